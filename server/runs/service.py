"""Run lifecycle. Services never commit: the request does."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..errors import Unprocessable
from ..jsonnum import json_float
from ..storage.models import Run, RunTag, Series, utcnow
from . import repository
from .schemas import DiagnosisBadge, RunOut, RunPatch, RunUpsert, SeriesSummary, as_utc

FINAL_STATUSES = ("finished", "failed", "crashed")


def upsert_run(session: Session, run_id: str, body: RunUpsert) -> tuple[Run, bool]:
    """Create the run, or update the fields given. Returns (run, created)."""
    run = repository.get_run(session, run_id)
    now = utcnow()
    created = run is None
    if created:
        if body.project is None:
            raise Unprocessable("project is required to create a run")
        project = repository.get_or_create_project(session, body.project)
        run = Run(
            id=run_id,
            project_id=project.id,
            project=project,
            name=body.name or run_id[:8],
            status=body.status or "running",
            config=body.config or {},
            created_at=now,
            updated_at=now,
            heartbeat_at=now,
            dropped_points=0,
            num_points=0,
        )
        session.add(run)
    else:
        if body.project is not None and body.project != run.project.name:
            run.project = repository.get_or_create_project(session, body.project)
        if body.name is not None:
            run.name = body.name
        if body.config is not None:
            run.config = body.config
        if body.status is not None:
            _set_status(run, body.status)
        run.updated_at = now
    if body.tags is not None:
        _set_tags(run, body.tags)
    session.flush()
    return run, created


def patch_run(session: Session, run: Run, body: RunPatch) -> Run:
    if body.status is not None:
        _set_status(run, body.status)
    if body.tags is not None:
        _set_tags(run, body.tags)
    run.updated_at = utcnow()
    session.flush()
    return run


def heartbeat(session: Session, run: Run) -> None:
    run.heartbeat_at = utcnow()
    revive_if_crashed(session, run.id)


def revive_if_crashed(session: Session, run_id: str) -> None:
    """A run marked crashed that sends again was only silent: it is running again."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == "crashed")
        .values(status="running", finished_at=None)
    )


def _set_status(run: Run, status: str) -> None:
    run.status = status
    run.finished_at = utcnow() if status in FINAL_STATUSES else None


def _set_tags(run: Run, tags: list[str]) -> None:
    run.tag_rows = [RunTag(run_id=run.id, tag=t, position=i) for i, t in enumerate(tags)]


def summarize(s: Series) -> SeriesSummary:
    return SeriesSummary(
        count=s.count,
        first_step=s.first_step,
        last_step=s.last_step,
        last_value=json_float(s.last_value),
        min=s.min,
        max=s.max,
        nan_count=s.nan_count,
        inf_count=s.inf_count,
    )


def run_out(run: Run, series: list[Series], badges: list[tuple]) -> RunOut:
    return RunOut(
        id=run.id,
        project=run.project.name,
        name=run.name,
        status=run.status,
        config=run.config or {},
        tags=run.tags,
        created_at=as_utc(run.created_at),
        updated_at=as_utc(run.updated_at),
        heartbeat_at=as_utc(run.heartbeat_at),
        finished_at=as_utc(run.finished_at),
        dropped_points=run.dropped_points,
        num_points=run.num_points,
        summary={s.key: summarize(s) for s in sorted(series, key=lambda s: s.key)},
        diagnoses=[b[0] for b in badges],
        badges=[DiagnosisBadge(kind=k, severity=s, count=c) for k, s, c in badges],
    )


def runs_out(
    session: Session, runs: list[Run], summary_keys: list[str] | None = None
) -> list[RunOut]:
    ids = [r.id for r in runs]
    series = repository.series_of_runs(session, ids, summary_keys)
    badges = repository.active_diagnosis_badges(session, ids)
    return [run_out(r, series[r.id], badges[r.id]) for r in runs]
