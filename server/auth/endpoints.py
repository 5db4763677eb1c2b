"""The dashboard's session: log in with a key, kept in an HTTP-only SameSite cookie."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ..deps import CSRF_COOKIE, KEY_COOKIE, PrincipalDep, SessionDep, SettingsDep
from ..errors import Unauthorized
from .keys import principal_for

router = APIRouter(prefix="/api/v1", tags=["session"])


class LoginIn(BaseModel):
    key: str = Field(min_length=1, max_length=200)


class SessionOut(BaseModel):
    auth: bool = Field(description="Whether this server asks for API keys at all.")
    project: str | None = Field(description="The key's project; null: every project.")
    grants: list[str]


@router.get("/session", response_model=SessionOut)
def who_am_i(principal: PrincipalDep, settings: SettingsDep) -> SessionOut:
    """What the caller may do (the dashboard asks this first; 401 means: show the login)."""
    return SessionOut(
        auth=settings.auth, project=principal.project_name, grants=sorted(principal.grants)
    )


@router.post("/session", response_model=SessionOut)
def log_in(
    body: LoginIn, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> SessionOut:
    """Check a key and keep it in an HTTP-only, SameSite=Strict cookie for the dashboard.

    State-changing requests that rely on the cookie must echo the ``losslens_csrf`` cookie in
    an ``X-Losslens-CSRF`` header (double submit): another site can send the cookie, but
    cannot read it.
    """
    principal = principal_for(session, body.key)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    secure = settings.cookie_secure or request.url.scheme == "https"
    response.set_cookie(
        KEY_COOKIE,
        body.key,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=30 * 24 * 3600,
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(24),
        httponly=False,
        samesite="strict",
        secure=secure,
        max_age=30 * 24 * 3600,
        path="/",
    )
    return SessionOut(
        auth=settings.auth, project=principal.project_name, grants=sorted(principal.grants)
    )


@router.delete("/session", status_code=204)
def log_out() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(KEY_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
