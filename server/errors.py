"""Domain errors carry their HTTP status; one handler turns them into JSON responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class LosslensError(Exception):
    """Base of the errors the API answers with; ``status_code`` is the HTTP status."""

    status_code = 400

    def __init__(self, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class BadRequest(LosslensError):
    status_code = 400


class Unauthorized(LosslensError):
    status_code = 401

    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(LosslensError):
    status_code = 403


class NotFound(LosslensError):
    status_code = 404


class PayloadTooLarge(LosslensError):
    status_code = 413


class UnsupportedMediaType(LosslensError):
    status_code = 415


class Unprocessable(LosslensError):
    status_code = 422


def short(text: object, limit: int = 60) -> str:
    """A bounded repr for error messages: never echo megabytes of input back."""
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LosslensError)
    async def _domain_error(_request: Request, exc: LosslensError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
