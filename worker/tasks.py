"""Celery tasks. Each takes ids and re-reads what it needs; each is idempotent."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.jobs import after_ingest
from server.settings import Settings
from server.storage.engine import make_engine, make_sessionmaker

from .celery_app import app

log = logging.getLogger("losslens.worker")
_lock = threading.Lock()
_maker: sessionmaker[Session] | None = None


def _sessions() -> sessionmaker[Session]:
    """One engine per worker process, made on first use (after the fork)."""
    global _maker
    with _lock:
        if _maker is None:
            _maker = make_sessionmaker(make_engine(Settings().resolved_database_url))
        return _maker


@app.task(
    name="losslens.diagnose_run",
    acks_late=True,
    autoretry_for=(OperationalError, IntegrityError, DBAPIError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=5,
)
def diagnose_run(run_id: str) -> None:
    """Compact the run's chunks where ready, run every rule, upsert its diagnoses."""
    after_ingest(_sessions(), run_id, Settings().compact_target_points)
