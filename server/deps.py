"""Request dependencies: settings, the unit of work, the run addressed by the path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from .errors import NotFound, Unprocessable
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


def get_run(run_id: RunIdDep, session: SessionDep) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


RunDep = Annotated[Run, Depends(get_run)]
