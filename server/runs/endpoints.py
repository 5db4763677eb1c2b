"""Routes of the runs and projects API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.exc import IntegrityError

from ..deps import (
    AdminRun,
    ReadAccess,
    ReadRun,
    RunIdDep,
    SessionDep,
    WriteAccess,
    WriteRun,
    diagnose_after_commit,
    visible_run,
)
from ..errors import Forbidden
from ..storage.models import Run
from . import repository, service
from .schemas import ProjectList, ProjectOut, RunList, RunOut, RunPatch, RunUpsert, Status, as_utc

router = APIRouter(prefix="/api/v1", tags=["runs"])


@router.put("/runs/{run_id}", response_model=RunOut)
def put_run(
    run_id: RunIdDep,
    body: RunUpsert,
    session: SessionDep,
    response: Response,
    principal: WriteAccess,
) -> RunOut:
    """Create a run (the client chooses its UUID) or update the fields given. Idempotent."""
    if principal.project_name is not None:
        # A key writes to its own project only; a run of another project does not exist for it.
        if body.project not in (None, principal.project_name):
            raise Forbidden(f"this key is for project {principal.project_name!r}")
        body.project = principal.project_name
        existing = session.get(Run, run_id)
        if existing is not None:
            visible_run(session, run_id, principal)
    try:
        with session.begin_nested():
            run, created = service.upsert_run(session, run_id, body)
    except IntegrityError:
        # Another request created the same run between our read and our insert: update it.
        run, created = service.upsert_run(session, run_id, body)
    response.status_code = 201 if created else 200
    return service.runs_out(session, [run])[0]


@router.patch("/runs/{run_id}", response_model=RunOut)
def patch_run(request: Request, run: WriteRun, body: RunPatch, session: SessionDep) -> RunOut:
    """Change a run's status or tags. A run that ends is diagnosed once more, at once."""
    service.patch_run(session, run, body)
    if body.status in service.FINAL_STATUSES:
        diagnose_after_commit(request, run.id, force=True)
    return service.runs_out(session, [run])[0]


@router.post("/runs/{run_id}/heartbeat", status_code=204)
def post_heartbeat(run: WriteRun, session: SessionDep) -> Response:
    """The training process is alive (the SDK sends this when it has nothing else to send)."""
    service.heartbeat(session, run)
    return Response(status_code=204)


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run: ReadRun, session: SessionDep) -> RunOut:
    return service.runs_out(session, [run])[0]


@router.delete("/runs/{run_id}", status_code=204)
def delete_run(run: AdminRun, session: SessionDep) -> Response:
    """Delete a run with all its points and diagnoses."""
    session.delete(run)
    return Response(status_code=204)


@router.get("/runs", response_model=RunList)
def list_runs(
    session: SessionDep,
    principal: ReadAccess,
    project: Annotated[str | None, Query(max_length=200)] = None,
    status: Status | None = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=250, description="Substring of the name")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    sort: Annotated[
        str,
        Query(
            pattern=r"^-?(created_at|updated_at|name|status|num_points)$",
            description="A field, descending with a leading '-'.",
        ),
    ] = "-created_at",
    summary_keys: Annotated[
        str | None,
        Query(
            max_length=10_000,
            description="Comma-separated keys to summarise per run (default: every key; "
            "empty: none). The runs page asks only for loss,val/loss.",
        ),
    ] = None,
) -> RunList:
    """Runs, newest first by default, filtered by project, status, tag and name."""
    if principal.project_name is not None:
        if project not in (None, principal.project_name):
            return RunList(runs=[], total=0, limit=limit, offset=offset)
        project = principal.project_name
    runs, total = repository.list_runs(session, project, status, tag, q, limit, offset, sort)
    keys = None if summary_keys is None else [k for k in summary_keys.split(",") if k]
    return RunList(
        runs=service.runs_out(session, runs, keys), total=total, limit=limit, offset=offset
    )


@router.get("/projects", response_model=ProjectList)
def list_projects(session: SessionDep, principal: ReadAccess) -> ProjectList:
    """Projects with their run counts (with auth on: the key's own project only)."""
    return ProjectList(
        projects=[
            ProjectOut(name=n, num_runs=c, last_activity=as_utc(t))
            for n, c, t in repository.list_projects(session)
            if principal.project_name in (None, n)
        ]
    )
