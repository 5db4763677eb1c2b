"""sync_spool(): upload spooled runs, skip what was acknowledged, keep what failed."""

from __future__ import annotations

import os

from client_sdk import Run, sync_spool
from client_sdk._spool import list_segments
from client_sdk.testing import MemoryTransport, Response


def _offline_run(fast, n_calls: int, **kw) -> Run:
    run = Run(project="p", name="offline", mode="offline", settings=fast, **kw)
    for i in range(n_calls):
        run.log({"loss": float(i), "acc": i / n_calls})
        if i % 100 == 99:
            run.flush(5)  # several batches
    assert run.finish(timeout=5)
    return run


def test_offline_runs_are_uploaded_with_progress_then_removed(fast, spool_root):
    runs = [_offline_run(fast, 250), _offline_run(fast, 120, tags=["b"])]
    assert not list_segments(runs[0].spool_path) == []
    calls = []
    result = sync_spool(str(spool_root), retries=0)  # $LOSSLENS_URL: nothing listens there
    assert result.failures == 2 and result.batches == 0 and not result.ok
    assert all(list_segments(r.spool_path) for r in runs)  # nothing lost
    t = MemoryTransport()
    result = sync_spool(str(spool_root), transport=t,
                        progress=lambda done, total: calls.append((done, total)))
    assert (result.runs, result.points, result.failures, result.busy) == (2, 740, 0, 0)
    assert calls[0] == (0, result.batches) and calls[-1] == (result.batches, result.batches)
    assert [t.num_points(r.id) for r in runs] == [500, 240]
    assert t.runs[runs[1].id]["tags"] == ["b"] and t.runs[runs[1].id]["status"] == "finished"
    assert os.listdir(spool_root) == []
    again = sync_spool(str(spool_root), transport=t)
    assert (again.runs, again.batches) == (0, 0)


def test_acknowledged_batches_are_skipped(fast, spool_root):
    t = MemoryTransport()
    run = Run(project="p", transport=t, settings=fast.with_overrides(finish_attempts=1))
    for i in range(10):
        run.log({"a": float(i)})
    run.flush(5)  # one batch sent and acknowledged
    t.down = True
    for i in range(10, 20):
        run.log({"a": float(i)})
        run.flush(0.05)
    assert not run.finish(timeout=1)
    t.down = False
    sent_before = len([r for r in t.requests if r.path.endswith("/points") and r.json])
    result = sync_spool(run.spool_path, transport=t)
    assert result.skipped == 1 and result.failures == 0 and result.runs == 1
    assert t.series(run.id, "a")[0] == list(range(20))
    assert t.runs[run.id]["status"] == "finished"
    assert len([r for r in t.requests if r.path.endswith("/points")]) - sent_before >= 1
    assert not os.path.exists(run.spool_path)


def test_a_run_dir_in_use_is_skipped(fast, spool_root):
    live = Run(project="p", mode="offline", settings=fast)
    live.log({"a": 1.0})
    live.flush(5)
    t = MemoryTransport()
    result = sync_spool(str(spool_root), transport=t)
    assert result.busy == 1 and result.batches == 0 and t.requests == []
    live.finish(timeout=5)
    assert sync_spool(str(spool_root), transport=t).points == 1


def test_a_refused_batch_stays_in_the_spool(fast, spool_root):
    run = _offline_run(fast, 10)
    refuse = [True]

    def handler(req):
        if refuse[0] and req.path.endswith("/points"):
            return Response(422, {}, b'{"detail": "bad batch"}')
        return None

    t = MemoryTransport(handler=handler)
    result = sync_spool(str(spool_root), transport=t)
    assert result.failures == 1 and not result.ok
    assert "bad batch" in result.errors[0]
    assert list_segments(run.spool_path)  # kept for another try
    refuse[0] = False
    result = sync_spool(str(spool_root), transport=t)
    assert result.ok and result.points == 20


def test_a_crashed_run_is_marked_crashed_and_an_unreachable_server_stops_the_sync(
        fast, spool_root):
    run = _offline_run(fast, 10)
    meta_path = os.path.join(run.spool_path, "run.json")
    with open(meta_path) as fh:  # as if the process had been killed while running
        text = fh.read().replace('"status": "finished"', '"status": "running"')
    with open(meta_path, "w") as fh:
        fh.write(text)
    t = MemoryTransport()
    t.down = True
    result = sync_spool(str(spool_root), transport=t, retries=1)
    assert result.failures == 1 and "cannot reach" in result.errors[0]
    assert list_segments(run.spool_path)
    t.down = False
    result = sync_spool(str(spool_root), transport=t)
    assert result.ok and t.runs[run.id]["status"] == "crashed"


def test_nothing_to_sync():
    result = sync_spool("/nonexistent/spool", transport=MemoryTransport())
    assert (result.runs, result.batches, result.failures) == (0, 0, 0)
    assert "0 runs" in result.summary()
