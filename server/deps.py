"""Request dependencies: settings, the unit of work, the run addressed by the path."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from .auth.keys import ANONYMOUS_ADMIN, Principal, principal_for
from .errors import Forbidden, NotFound, Unauthorized, Unprocessable
from .settings import Settings
from .storage.models import Run


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back if it raises.

    A route that changed what a diagnosis sees calls :func:`diagnose_after_commit`; the
    diagnosis is asked for only once the commit succeeded.
    """
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    run_id = getattr(request.state, "diagnose_run", None)
    if run_id is not None:
        request.app.state.dispatcher.request(run_id, force=request.state.diagnose_force)


def diagnose_after_commit(request: Request, run_id: str, force: bool = False) -> None:
    """Ask for a diagnosis of ``run_id`` once this request's transaction has committed."""
    request.state.diagnose_run = run_id
    request.state.diagnose_force = force


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def canonical_run_id(run_id: Annotated[str, Path(max_length=64)]) -> str:
    """The run id in canonical UUID text; anything else is a 422."""
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        raise Unprocessable(
            "run id must be a UUID, like 0b7e9b1c-5a63-4e0e-9f0e-3f3c2a1d9b7e"
        ) from None


RunIdDep = Annotated[str, Depends(canonical_run_id)]


KEY_COOKIE = "losslens_key"
CSRF_COOKIE = "losslens_csrf"
CSRF_HEADER = "x-losslens-csrf"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """Who the request acts as: a Bearer key, or the dashboard's cookie (with a CSRF token on
    state-changing requests). With auth off, an admin of every project."""
    if not settings.auth:
        return ANONYMOUS_ADMIN
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <key>'")
        token = token.strip()
    else:
        token = request.cookies.get(KEY_COOKIE, "")
        if token and request.method not in _SAFE_METHODS:
            expected = request.cookies.get(CSRF_COOKIE, "")
            sent = request.headers.get(CSRF_HEADER, "")
            if not expected or not hmac.compare_digest(expected, sent):
                raise Forbidden(f"missing or wrong {CSRF_HEADER} header")
    if not token:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    principal = principal_for(session, token)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _grant(name: str):
    def check(principal: PrincipalDep) -> Principal:
        if name not in principal.grants:
            raise Forbidden(f"this key's scope does not allow {name}")
        return principal

    return check


ReadAccess = Annotated[Principal, Depends(_grant("read"))]
WriteAccess = Annotated[Principal, Depends(_grant("write"))]
AdminAccess = Annotated[Principal, Depends(_grant("admin"))]


def visible_run(session: Session, run_id: str, principal: Principal) -> Run:
    """The run if it exists in the principal's project; 404 otherwise, whoever owns it."""
    run = session.get(Run, run_id)
    if run is None or (principal.project_id is not None and run.project_id != principal.project_id):
        raise NotFound(f"run {run_id} not found")
    return run


def _run_with(grant: str):
    def load(run_id: RunIdDep, session: SessionDep, principal=Depends(_grant(grant))) -> Run:
        return visible_run(session, run_id, principal)

    return load


ReadRun = Annotated[Run, Depends(_run_with("read"))]
WriteRun = Annotated[Run, Depends(_run_with("write"))]
AdminRun = Annotated[Run, Depends(_run_with("admin"))]
