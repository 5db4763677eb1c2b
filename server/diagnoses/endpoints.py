"""Routes of the diagnoses API."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from ..deps import AdminRun, ReadAccess, ReadRun, SessionDep, WriteRun
from ..runs.schemas import as_utc
from . import repository
from .schemas import DiagnosisList, DiagnosisOut, DiagnosisPage, ModelChecksIn, MuteList, Severity

KindPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]

router = APIRouter(prefix="/api/v1", tags=["diagnoses"])


@router.put("/runs/{run_id}/model-checks", response_model=DiagnosisList)
def put_model_checks(run: WriteRun, body: ModelChecksIn, session: SessionDep) -> DiagnosisList:
    """Static findings computed by the SDK at ``watch()`` time; replaces the earlier ones."""
    repository.sync_findings(
        session,
        run.id,
        "model_check",
        (repository.FindingIn(**f.model_dump()) for f in body.findings),
    )
    return _list(session, run.id)


@router.get("/runs/{run_id}/diagnoses", response_model=DiagnosisList)
def get_run_diagnoses(run: ReadRun, session: SessionDep) -> DiagnosisList:
    """The run's diagnoses, active and resolved."""
    return _list(session, run.id)


@router.get("/runs/{run_id}/mutes", response_model=MuteList)
def get_mutes(run: ReadRun, session: SessionDep) -> MuteList:
    """Kinds muted for this run."""
    return MuteList(kinds=sorted(repository.muted_kinds(session, run.id)))


@router.put("/runs/{run_id}/mutes/{kind}", response_model=MuteList)
def put_mute(run: AdminRun, kind: KindPath, session: SessionDep) -> MuteList:
    """Mute a kind for this run (a false positive, or a known and accepted condition): its
    diagnoses stay recorded but leave the badges, the ingest answer and the SDK callback."""
    repository.set_muted(session, run.id, kind, True)
    return MuteList(kinds=sorted(repository.muted_kinds(session, run.id)))


@router.delete("/runs/{run_id}/mutes/{kind}", status_code=204)
def delete_mute(run: AdminRun, kind: KindPath, session: SessionDep) -> Response:
    """Unmute a kind for this run."""
    repository.set_muted(session, run.id, kind, False)
    return Response(status_code=204)


@router.get("/diagnoses", response_model=DiagnosisPage)
def search_diagnoses(
    session: SessionDep,
    principal: ReadAccess,
    project: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["active", "resolved"] | None = None,
    severity: Severity | None = None,
    include_muted: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> DiagnosisPage:
    """Diagnoses across runs, newest first: for automation (alerts, dashboards, sweeps)."""
    if principal.project_name is not None:
        if project not in (None, principal.project_name):
            return DiagnosisPage(diagnoses=[], total=0, limit=limit, offset=offset)
        project = principal.project_name
    rows, total = repository.search(
        session, project, kind, status, severity, include_muted, limit, offset
    )
    return DiagnosisPage(diagnoses=[_out(d) for d in rows], total=total, limit=limit, offset=offset)


def _out(d) -> DiagnosisOut:
    item = DiagnosisOut.model_validate(d, from_attributes=True)
    item.first_seen_at = as_utc(item.first_seen_at)
    item.updated_at = as_utc(item.updated_at)
    item.resolved_at = as_utc(item.resolved_at)
    return item


def _list(session, run_id: str) -> DiagnosisList:
    return DiagnosisList(diagnoses=[_out(d) for d in repository.run_diagnoses(session, run_id)])
