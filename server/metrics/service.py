"""Ingest of a batch and reads of series. Services never commit: the request does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import case, update
from sqlalchemy.orm import Session

from ..storage.models import Run, utcnow
from . import repository
from .body import Batch
from .downsample import downsample
from .points import Points, sorted_unique


@dataclass
class IngestResult:
    accepted: int
    new: int
    duplicate: bool


def ingest(session: Session, run: Run, batch: Batch) -> IngestResult:
    """Store a batch in the caller's transaction: one chunk per key, series summaries, the id.

    A batch id seen before changes nothing. ``new`` counts (key, step) pairs not stored before.
    """
    accepted = batch.num_points
    if not repository.claim_batch(session, run.id, batch.batch_id, accepted):
        return IngestResult(accepted, 0, True)
    series = repository.lock_series(session, run.id, list(batch.points))
    rows, new_total = [], 0
    for key, pts in batch.points.items():
        pts = sorted_unique(pts)
        s = series[key]
        new_total += _update_summary(session, s, pts)
        rows.append(repository.chunk_row(s.id, pts))
    repository.insert_chunks(session, rows)
    repository.save_summaries(session, list(series.values()))
    now = utcnow()
    crashed = Run.status == "crashed"  # a crashed run that sends again was only silent
    session.execute(
        update(Run)
        .where(Run.id == run.id)
        .values(
            num_points=Run.num_points + new_total,
            dropped_points=Run.dropped_points + batch.dropped,
            heartbeat_at=now,
            updated_at=now,
            status=case((crashed, "running"), else_=Run.status),
            finished_at=case((crashed, None), else_=Run.finished_at),
        )
        .execution_options(synchronize_session=False)
    )
    return IngestResult(accepted, new_total, False)


def _update_summary(session: Session, s: repository.Summary, pts: Points) -> int:
    """Fold a batch into the series' running summaries; returns how many steps are new.

    Steps beyond the last stored one are new without looking (the usual append-only case);
    otherwise the stored steps in the batch's range are read to tell.
    """
    first, last = int(pts.steps[0]), int(pts.steps[-1])
    if s.last_step is None or first > s.last_step:
        new = len(pts)
    else:
        stored = repository.stored_steps_between(session, s.id, first, last)
        new = len(pts) - int(np.isin(pts.steps, stored, assume_unique=True).sum())
    values = pts.values
    nan = np.isnan(values)
    inf = np.isinf(values)
    finite = values[~(nan | inf)]
    s.count = (s.count or 0) + new
    s.nan_count = (s.nan_count or 0) + int(nan.sum())
    s.inf_count = (s.inf_count or 0) + int(inf.sum())
    if len(finite):
        lo, hi = float(finite.min()), float(finite.max())
        s.min = lo if s.min is None else min(s.min, lo)
        s.max = hi if s.max is None else max(s.max, hi)
    s.first_step = first if s.first_step is None else min(s.first_step, first)
    if s.last_step is None or last >= s.last_step:
        s.last_step, s.last_value = last, float(values[-1])
    return new


@dataclass
class SeriesRead:
    key: str
    points: Points
    total: int
    downsampled: bool


def read_series(
    session: Session,
    run_id: str,
    keys: list[str],
    max_points: int | None,
    step_min: int | None,
    step_max: int | None,
    with_walls: bool,
) -> list[SeriesRead]:
    """Each key's points in range, downsampled to about ``max_points`` when given."""
    found = repository.series_by_keys(session, run_id, keys)
    out = []
    for key in keys:
        s = found.get(key)
        if s is None:
            out.append(SeriesRead(key, Points.empty(with_walls), 0, False))
            continue
        pts = repository.read_points(session, s.id, step_min, step_max, with_walls)
        total = len(pts)
        if max_points is not None and total > max_points:
            pts = downsample(pts, max_points)
            out.append(SeriesRead(key, pts, total, True))
        else:
            out.append(SeriesRead(key, pts, total, False))
    return out


def compact_run(session: Session, run_id: str, target_points: int, everything: bool = True) -> int:
    """Merge small chunks of a run's series; returns how many chunks were removed.

    With ``everything=False`` only series whose small chunks add up to a full chunk are
    touched, so a live run is not rewritten on every call.
    """
    if everything:
        ids = repository.all_series_ids(session, run_id)
    else:
        ids = repository.series_ids_to_compact(session, run_id, target_points)
    return sum(repository.compact_series(session, sid, target_points) for sid in ids)
