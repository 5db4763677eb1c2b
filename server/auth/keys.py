"""Creating, listing, revoking and checking API keys. Never commits: the caller does."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..runs.repository import get_or_create_project
from ..storage.models import ApiKey, Project, utcnow

SCOPES = ("read", "write", "admin")
# What each scope may do: training jobs write, dashboards and automation read, admins all.
GRANTS = {"read": {"read"}, "write": {"write"}, "admin": {"read", "write", "admin"}}
KEY_PREFIX = "ll_"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a project (None: every project, when auth is off) and grants."""

    project_id: int | None
    project_name: str | None
    grants: frozenset[str]
    key_id: int | None = None


ANONYMOUS_ADMIN = Principal(None, None, frozenset(GRANTS["admin"]))


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(session: Session, project: str, scope: str, name: str = "") -> tuple[ApiKey, str]:
    """A new key; the plaintext is returned once and never stored."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    proj = get_or_create_project(session, project)
    key = ApiKey(
        project_id=proj.id,
        project=proj,
        name=name,
        scope=scope,
        prefix=plaintext[:10],
        key_hash=_hash(plaintext),
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    return key, plaintext


def list_keys(session: Session, project: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if project is not None:
        query = query.join(Project, Project.id == ApiKey.project_id).where(Project.name == project)
    return list(session.scalars(query))


def revoke_key(session: Session, key_id: int) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None:
        return False
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return True


def principal_for(session: Session, plaintext: str) -> Principal | None:
    """The principal of a valid, unrevoked key, or None."""
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == _hash(plaintext))).first()
    if key is None or key.revoked_at is not None:
        return None
    return Principal(key.project_id, key.project.name, frozenset(GRANTS[key.scope]), key.id)
