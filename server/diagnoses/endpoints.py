"""Routes of the diagnoses API."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import RunDep, SessionDep
from ..runs.schemas import as_utc
from . import repository
from .schemas import DiagnosisList, DiagnosisOut, ModelChecksIn

router = APIRouter(prefix="/api/v1", tags=["diagnoses"])


@router.put("/runs/{run_id}/model-checks", response_model=DiagnosisList)
def put_model_checks(run: RunDep, body: ModelChecksIn, session: SessionDep) -> DiagnosisList:
    """Static findings computed by the SDK at ``watch()`` time; replaces the earlier ones."""
    repository.sync_findings(
        session,
        run.id,
        "model_check",
        (repository.FindingIn(**f.model_dump()) for f in body.findings),
    )
    return _list(session, run.id)


@router.get("/runs/{run_id}/diagnoses", response_model=DiagnosisList)
def get_run_diagnoses(run: RunDep, session: SessionDep) -> DiagnosisList:
    """The run's diagnoses, active and resolved."""
    return _list(session, run.id)


def _list(session, run_id: str) -> DiagnosisList:
    out = []
    for d in repository.run_diagnoses(session, run_id):
        item = DiagnosisOut.model_validate(d, from_attributes=True)
        item.first_seen_at = as_utc(item.first_seen_at)
        item.updated_at = as_utc(item.updated_at)
        item.resolved_at = as_utc(item.resolved_at)
        out.append(item)
    return DiagnosisList(diagnoses=out)
