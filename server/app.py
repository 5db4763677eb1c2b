"""The FastAPI application factory."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from .auth.endpoints import router as session_router
from .diagnoses.endpoints import router as diagnoses_router
from .dispatch import Dispatcher
from .errors import clip, install_error_handlers
from .frontend_routes import router as frontend_router
from .jobs import after_ingest
from .metrics.endpoints import router as metrics_router
from .runs.endpoints import router as runs_router
from .runs.reaper import Reaper
from .settings import Settings
from .storage.engine import make_engine, make_sessionmaker

log = logging.getLogger("losslens.server")


def _diagnosis_job(settings: Settings, app: FastAPI) -> Callable[[str], object]:
    """Queue the Celery task when a broker is configured; else diagnose in this process."""
    if settings.broker_url:
        from worker.enqueue import make_sender

        return make_sender(settings.broker_url)
    return partial(
        after_ingest, app.state.sessionmaker, compact_target_points=settings.compact_target_points
    )


def _check_database(app: FastAPI) -> str:
    try:
        with app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {type(exc).__name__}"


def _check_broker(settings: Settings) -> str:
    if not settings.broker_url:
        return "not configured"
    try:
        import redis

        client = redis.Redis.from_url(
            settings.broker_url, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {type(exc).__name__}"


_ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "What was wrong, briefly."}},
    "required": ["detail"],
}


def _document_errors(app: FastAPI) -> None:
    """Every error is ``{"detail": "<what was wrong>"}``: say so in the OpenAPI document
    (FastAPI documents its own 422 list format, which this app never sends)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["HTTPValidationError"] = _ERROR_SCHEMA
            components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>`` to every answer: the time spent in the server,
    which a client can tell apart from its own queueing (the load benchmark reads it)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()

        async def timed_send(message):
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1e3
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={ms:.1f}".encode()),
                ]
            await send(message)

        return await self.app(scope, receive, timed_send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the engine is created in the lifespan and disposed after it."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.dispatcher = Dispatcher(_diagnosis_job(settings, app), settings.diagnose_interval)
        reaper = Reaper(app.state.sessionmaker, settings.heartbeat_timeout)
        try:
            yield
        finally:
            reaper.close()
            app.state.dispatcher.close()
            engine.dispose()

    app = FastAPI(
        title="Losslens",
        version="0.1.0",
        description="Watch deep-learning training runs live and diagnose them.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default answer echoes the input back; say what was wrong, briefly.
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        msg = str(first.get("msg", "invalid request"))
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        return JSONResponse({"detail": f"{clip(where, 120)}: {clip(msg, 300)}{more}"}, 422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", str(exc).splitlines()[0][:200])
        return JSONResponse(
            {"detail": "the database is unavailable; retry shortly"},
            503,
            headers={"Retry-After": "5"},
        )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request) -> JSONResponse:
        """The database (and the broker, when one is configured) answer."""
        checks = {"database": _check_database(request.app), "broker": _check_broker(settings)}
        ok = all(v in ("ok", "not configured") for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **checks},
            200 if ok else 503,
            headers=None if ok else {"Retry-After": "5"},
        )

    app.add_middleware(ServerTiming)
    _document_errors(app)
    app.include_router(runs_router)
    app.include_router(metrics_router)
    app.include_router(diagnoses_router)
    app.include_router(session_router)
    app.include_router(frontend_router)
    return app
