"""Diagnosing a run: load its series, run every rule, store the findings.

The same function runs in the server's in-process dispatcher (no broker) and in the Celery
task (``worker.tasks``), so both give the same diagnoses.
"""

from __future__ import annotations

import logging
import math

from sqlalchemy.orm import Session, sessionmaker

from ..metrics import repository as points_repo
from ..storage.models import Run
from . import repository
from .repository import FindingIn

log = logging.getLogger("losslens.diagnose")


def diagnose_and_store(maker: sessionmaker[Session], run_id: str) -> list[FindingIn]:
    """Diagnose one run; findings are upserted and those that no longer hold are resolved."""
    from worker.diagnosis import RunData, SeriesData, diagnose

    with maker.begin() as session:
        run = session.get(Run, run_id)
        if run is None:  # deleted since it was queued
            return []
        config = dict(run.config or {})
        series = {
            key: SeriesData(steps=pts.steps, values=pts.values)
            for key, pts in points_repo.read_run_points(session, run_id).items()
        }
    # The rules are pure CPU work: no transaction is held while they run.
    errors: list = []
    findings = diagnose(RunData(series=series, config=config), errors=errors)
    for err in errors:
        log.warning("rule %s failed on run %s: %s", err.kind, run_id, err.error)
    stored = [_finding_in(f) for f in findings]
    with maker.begin() as session:
        if session.get(Run, run_id) is not None:
            repository.sync_findings(session, run_id, "rule", stored)
    return stored


def _finding_in(f) -> FindingIn:
    return FindingIn(
        kind=f.kind,
        severity=f.severity,
        title=f.title,
        recommendation=f.recommendation or "",
        subject=f.subject or "",
        step_start=None if f.step_start is None else int(f.step_start),
        step_end=None if f.step_end is None else int(f.step_end),
        evidence=_json_safe(f.evidence or {}),
    )


def _json_safe(value):
    """Evidence as strict JSON: NaN and ±Inf become strings, NumPy numbers plain numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # NumPy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value
