"""SQL access to series and chunks. Never commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..storage.models import Chunk, IngestBatch, Series
from . import codec
from .points import Points, merge_newest_wins


def _insert(session: Session, table):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def claim_batch(session: Session, run_id: str, batch_id: str, num_points: int) -> bool:
    """Record a batch id; False when the run has seen it before (then nothing is to change)."""
    stmt = (
        _insert(session, IngestBatch)
        .values(run_id=run_id, batch_id=batch_id, num_points=num_points)
        .on_conflict_do_nothing()
        .returning(IngestBatch.batch_id)
    )
    return session.execute(stmt).first() is not None


@dataclass
class Summary:
    """A series' running summaries, read and written with plain SQL (no ORM unit of work:
    ingest writes them back in one statement)."""

    id: int
    key: str
    count: int
    first_step: int | None
    last_step: int | None
    last_value: float | None
    min: float | None
    max: float | None
    nan_count: int
    inf_count: int


_SUMMARY_COLUMNS = [c.name for c in fields(Summary)]


def lock_series(session: Session, run_id: str, keys: Sequence[str]) -> dict[str, Summary]:
    """Get (creating where missing) the summaries of ``keys``, locked for this transaction."""
    ordered = sorted(set(keys))  # one lock order for every writer: no deadlock
    if not ordered:
        return {}
    table = Series.__table__
    stmt = _insert(session, table).on_conflict_do_nothing()
    session.execute(
        stmt,
        [{"run_id": run_id, "key": k, "count": 0, "nan_count": 0, "inf_count": 0} for k in ordered],
    )
    query = select(*(table.c[name] for name in _SUMMARY_COLUMNS)).where(
        table.c.run_id == run_id, table.c.key.in_(ordered)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.order_by(table.c.key).with_for_update()
    return {row.key: Summary(*row) for row in session.execute(query)}


def save_summaries(session: Session, summaries: Sequence[Summary]) -> None:
    """Write summaries back, all in one executemany."""
    if not summaries:
        return
    table = Series.__table__
    columns = [c for c in _SUMMARY_COLUMNS if c not in ("id", "key")]
    stmt = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({c: bindparam(c) for c in columns})
    )
    session.execute(stmt, [{"_id": s.id, **{c: getattr(s, c) for c in columns}} for s in summaries])


def all_series(session: Session, run_id: str) -> list[Series]:
    return list(session.scalars(select(Series).where(Series.run_id == run_id).order_by(Series.key)))


def all_series_ids(session: Session, run_id: str) -> list[int]:
    return list(session.scalars(select(Series.id).where(Series.run_id == run_id)))


def series_by_keys(session: Session, run_id: str, keys: Iterable[str]) -> dict[str, Series]:
    query = select(Series).where(Series.run_id == run_id, Series.key.in_(list(keys)))
    return {s.key: s for s in session.scalars(query)}


def chunk_row(series_id: int, pts: Points) -> dict:
    """The row of a chunk holding ``pts`` (sorted, unique steps)."""
    finite = pts.values[np.isfinite(pts.values)]
    return {
        "series_id": series_id,
        "step_min": int(pts.steps[0]),
        "step_max": int(pts.steps[-1]),
        "count": len(pts),
        "vmin": float(finite.min()) if len(finite) else None,
        "vmax": float(finite.max()) if len(finite) else None,
        "nan_count": int(np.isnan(pts.values).sum()),
        "steps": codec.encode_steps(pts.steps),
        "values": codec.encode_values(pts.values),
        "walls": codec.encode_walls(pts.walls),
    }


def insert_chunks(session: Session, rows: list[dict]) -> None:
    if rows:
        session.execute(_insert(session, Chunk), rows)


def stored_steps_between(session: Session, series_id: int, lo: int, hi: int) -> np.ndarray:
    """Every stored step of a series within [lo, hi] (reads only the steps column)."""
    rows = session.execute(
        select(Chunk.steps).where(
            Chunk.series_id == series_id, Chunk.step_max >= lo, Chunk.step_min <= hi
        )
    ).scalars()
    parts = [codec.decode_steps(b) for b in rows]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)


def read_points(
    session: Session,
    series_id: int,
    step_min: int | None = None,
    step_max: int | None = None,
    with_walls: bool = False,
) -> Points:
    """The points of a series in [step_min, step_max], newest write winning, sorted by step."""
    cols = [Chunk.steps, Chunk.values] + ([Chunk.walls] if with_walls else [])
    query = select(*cols).where(Chunk.series_id == series_id).order_by(Chunk.id)
    if step_min is not None:
        query = query.where(Chunk.step_max >= step_min)
    if step_max is not None:
        query = query.where(Chunk.step_min <= step_max)
    parts = [
        Points(
            codec.decode_steps(row[0]),
            codec.decode_values(row[1]),
            codec.decode_walls(row[2]) if with_walls else None,
        )
        for row in session.execute(query)
    ]
    pts = merge_newest_wins(parts) if parts else Points.empty(with_walls)
    if step_min is not None or step_max is not None:
        lo = 0 if step_min is None else np.searchsorted(pts.steps, step_min, "left")
        hi = len(pts) if step_max is None else np.searchsorted(pts.steps, step_max, "right")
        if lo > 0 or hi < len(pts):
            pts = Points(
                pts.steps[lo:hi], pts.values[lo:hi], None if pts.walls is None else pts.walls[lo:hi]
            )
    return pts


def read_run_points(session: Session, run_id: str) -> dict[str, Points]:
    """Every point of every series of a run, in one query (for the diagnosis)."""
    query = (
        select(Series.key, Chunk.steps, Chunk.values)
        .join(Chunk, Chunk.series_id == Series.id)
        .where(Series.run_id == run_id)
        .order_by(Series.key, Chunk.id)
    )
    parts: dict[str, list[Points]] = {}
    for key, steps, values in session.execute(query):
        parts.setdefault(key, []).append(
            Points(codec.decode_steps(steps), codec.decode_values(values), None)
        )
    return {key: merge_newest_wins(p) for key, p in parts.items()}


def compact_series(session: Session, series_id: int, target_points: int) -> int:
    """Merge runs of consecutive small chunks into chunks of up to ``target_points``.

    Chunks are taken in write order (id); a group of consecutive small chunks is merged with
    newest-wins and stored under the id of its newest member, so its precedence against every
    other chunk stays what it was. Returns how many chunks were removed.
    """
    meta = session.execute(
        select(Chunk.id, Chunk.count).where(Chunk.series_id == series_id).order_by(Chunk.id)
    ).all()
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for chunk_id, count in meta:
        if count >= target_points or total + count > target_points:
            if len(current) > 1:
                groups.append(current)
            current, total = [], 0
        if count < target_points:
            current.append(chunk_id)
            total += count
    if len(current) > 1:
        groups.append(current)

    removed = 0
    for ids in groups:
        rows = session.execute(
            select(Chunk.id, Chunk.steps, Chunk.values, Chunk.walls)
            .where(Chunk.id.in_(ids))
            .order_by(Chunk.id)
        ).all()
        merged = merge_newest_wins(
            [
                Points(codec.decode_steps(s), codec.decode_values(v), codec.decode_walls(w))
                for _, s, v, w in rows
            ]
        )
        keep_id = ids[-1]
        row = chunk_row(series_id, merged)
        del row["series_id"]
        session.execute(update(Chunk).where(Chunk.id == keep_id).values(**row))
        session.execute(delete(Chunk).where(Chunk.id.in_(ids[:-1])))
        removed += len(ids) - 1
    return removed


# A live series with this many small chunks is compacted even before they make a full chunk:
# reading (and diagnosing) a run costs per chunk, and merging a few small ones is cheap.
MAX_SMALL_CHUNKS = 16


def series_ids_to_compact(session: Session, run_id: str, target_points: int) -> list[int]:
    """Series of a run whose small chunks add up to a full chunk, or have grown numerous."""
    query = (
        select(Chunk.series_id)
        .join(Series, Series.id == Chunk.series_id)
        .where(Series.run_id == run_id, Chunk.count < target_points)
        .group_by(Chunk.series_id)
        .having(
            func.count() > 1,
            (func.sum(Chunk.count) >= target_points) | (func.count() >= MAX_SMALL_CHUNKS),
        )
    )
    return list(session.scalars(query))
