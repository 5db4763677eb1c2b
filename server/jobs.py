"""The background job of a run after ingest, shared by the in-process dispatcher and Celery."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from .diagnoses.service import diagnose_and_store
from .metrics.service import compact_run
from .storage.models import Run


def after_ingest(maker: sessionmaker[Session], run_id: str, compact_target_points: int) -> None:
    """Compact the run's chunks where a full chunk is ready (all of them once it has ended),
    then diagnose it. Idempotent: running it twice leaves the same state."""
    with maker.begin() as session:
        run = session.get(Run, run_id)
        if run is None:
            return
        compact_run(session, run_id, compact_target_points, everything=run.status != "running")
    diagnose_and_store(maker, run_id)
