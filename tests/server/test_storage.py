"""Ingest, reads and compaction through the storage layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from server.metrics import repository, service
from server.metrics.body import Batch
from server.metrics.points import Points
from server.runs.schemas import RunUpsert
from server.runs.service import upsert_run
from server.storage.engine import make_engine, make_sessionmaker
from server.storage.models import Chunk, Run, Series

RUN_ID = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)
    with maker.begin() as s:
        upsert_run(s, RUN_ID, RunUpsert(project="p"))
    yield maker
    engine.dispose()


def _batch(batch_id, key, steps, values):
    steps = np.asarray(steps, np.int64)
    return Batch(
        batch_id,
        {key: Points(steps, np.asarray(values, float), np.full(len(steps), 1.7e9))},
    )


def _ingest(maker, batch):
    with maker.begin() as s:
        return service.ingest(s, s.get(Run, RUN_ID), batch)


def _read(maker, key, **kw):
    with maker.begin() as s:
        sid = s.scalar(select(Series.id).where(Series.run_id == RUN_ID, Series.key == key))
        return repository.read_points(s, sid, **kw)


def test_points_come_back_exactly_with_nan_and_inf(sessions):
    values = [0.5, np.nan, np.inf, -np.inf, -0.0, 1e-300]
    result = _ingest(sessions, _batch("b1", "loss", range(6), values))
    assert (result.accepted, result.new, result.duplicate) == (6, 6, False)
    pts = _read(sessions, "loss")
    assert pts.steps.tolist() == list(range(6))
    assert pts.values.view(np.int64).tolist() == np.array(values).view(np.int64).tolist()


def test_a_batch_seen_before_changes_nothing(sessions):
    _ingest(sessions, _batch("same", "loss", [0, 1], [1.0, 2.0]))
    again = _ingest(sessions, _batch("same", "loss", [0, 1], [7.0, 8.0]))
    assert again.duplicate and again.new == 0
    assert _read(sessions, "loss").values.tolist() == [1.0, 2.0]
    with sessions.begin() as s:
        assert s.get(Run, RUN_ID).num_points == 2
        assert s.scalar(select(func.count()).select_from(Chunk)) == 1


def test_a_later_batch_wins_and_only_new_steps_count(sessions):
    _ingest(sessions, _batch("a", "loss", [0, 1, 2], [1.0, 2.0, 3.0]))
    r = _ingest(sessions, _batch("b", "loss", [2, 3], [30.0, 4.0]))
    assert r.new == 1
    assert _read(sessions, "loss").values.tolist() == [1.0, 2.0, 30.0, 4.0]
    with sessions.begin() as s:
        series = s.scalars(select(Series)).one()
        assert (series.count, series.last_step, series.last_value) == (4, 3, 4.0)
        assert s.get(Run, RUN_ID).num_points == 4


def test_steps_out_of_order_and_late_replays_are_kept(sessions):
    _ingest(sessions, _batch("late", "loss", [100, 101], [1.0, 1.1]))
    r = _ingest(sessions, _batch("early", "loss", [5, 3, 4], [0.5, 0.3, 0.4]))
    assert r.new == 3
    pts = _read(sessions, "loss")
    assert pts.steps.tolist() == [3, 4, 5, 100, 101]
    assert pts.values.tolist() == [0.3, 0.4, 0.5, 1.0, 1.1]
    with sessions.begin() as s:
        series = s.scalars(select(Series)).one()
        assert (series.first_step, series.last_step, series.last_value) == (3, 101, 1.1)


def test_step_range_reads(sessions):
    for i in range(5):
        _ingest(sessions, _batch(f"b{i}", "loss", range(i * 10, i * 10 + 10), range(10)))
    pts = _read(sessions, "loss", step_min=15, step_max=31)
    assert pts.steps.tolist() == list(range(15, 32))


def test_summaries_count_nan_and_inf_and_keep_finite_extremes(sessions):
    _ingest(sessions, _batch("b", "loss", range(5), [3.0, np.nan, -1.0, np.inf, np.nan]))
    with sessions.begin() as s:
        series = s.scalars(select(Series)).one()
        assert (series.min, series.max, series.nan_count, series.inf_count) == (-1.0, 3.0, 2, 1)
        assert np.isnan(series.last_value)


def test_compaction_merges_small_chunks_and_keeps_newest_wins(sessions):
    rng = np.random.default_rng(0)
    expected = {}
    for i in range(30):
        steps = rng.choice(400, size=40, replace=False)
        values = rng.standard_normal(40)
        expected.update(zip(steps.tolist(), values.tolist(), strict=True))
        _ingest(sessions, _batch(f"b{i}", "loss", steps, values))
    before = _read(sessions, "loss")
    with sessions.begin() as s:
        removed = service.compact_run(s, RUN_ID, target_points=500)
    assert removed > 0
    after = _read(sessions, "loss")
    assert after.steps.tolist() == before.steps.tolist() == sorted(expected)
    assert (
        after.values.tolist() == before.values.tolist() == [expected[k] for k in sorted(expected)]
    )
    with sessions.begin() as s:
        n_chunks = s.scalar(select(func.count()).select_from(Chunk))
    assert n_chunks < 30
    # A write after compaction still wins over the compacted chunks.
    _ingest(sessions, _batch("late", "loss", [int(after.steps[0])], [123.0]))
    assert _read(sessions, "loss").values[0] == 123.0


def test_deleting_a_run_removes_its_points(sessions):
    _ingest(sessions, _batch("b", "loss", range(10), range(10)))
    with sessions.begin() as s:
        s.delete(s.get(Run, RUN_ID))
    with sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Chunk)) == 0
        assert s.scalar(select(func.count()).select_from(Series)) == 0


def test_a_live_run_is_compacted_only_once_a_full_chunk_is_ready(sessions):
    for i in range(4):
        _ingest(sessions, _batch(f"b{i}", "loss", range(i * 100, i * 100 + 100), range(100)))
    with sessions.begin() as s:
        assert service.compact_run(s, RUN_ID, 1000, everything=False) == 0
    for i in range(4, 10):
        _ingest(sessions, _batch(f"b{i}", "loss", range(i * 100, i * 100 + 100), range(100)))
    with sessions.begin() as s:
        assert service.compact_run(s, RUN_ID, 1000, everything=False) == 9
        assert s.scalar(select(func.count()).select_from(Chunk)) == 1
    assert _read(sessions, "loss").steps.tolist() == list(range(1000))


def test_many_small_chunks_of_a_live_run_are_merged_early(sessions):
    for i in range(20):
        _ingest(sessions, _batch(f"b{i}", "loss", range(i * 5, i * 5 + 5), range(5)))
    with sessions.begin() as s:
        assert service.compact_run(s, RUN_ID, 10_000, everything=False) == 19
    assert _read(sessions, "loss").steps.tolist() == list(range(100))


def test_reading_a_whole_run_matches_reading_each_series(sessions):
    from server.metrics.repository import read_run_points

    for i in range(3):
        _ingest(sessions, _batch(f"a{i}", "loss", range(i, i + 10), np.arange(10.0) + i))
        _ingest(sessions, _batch(f"b{i}", "acc", range(i * 2, i * 2 + 4), [0.1, 0.2, 0.3, 0.4]))
    with sessions.begin() as s:
        whole = read_run_points(s, RUN_ID)
    for key in ("loss", "acc"):
        one = _read(sessions, key)
        assert whole[key].steps.tolist() == one.steps.tolist()
        assert whole[key].values.tolist() == one.values.tolist()
