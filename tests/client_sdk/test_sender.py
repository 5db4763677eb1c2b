"""The sender thread: batching, retries and backoff, 4xx handling, diagnoses, finishing."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import pytest

from client_sdk import Run, sync_spool
from client_sdk._spool import list_segments
from client_sdk.testing import MemoryTransport, Response

from .conftest import free_port


def _points_requests(t: MemoryTransport) -> list:
    return [r for r in t.requests if r.path.endswith("/points")]


def test_the_run_is_put_before_points_and_patched_at_finish(fast):
    t = MemoryTransport()
    run = Run(project="digits", name="mlp", config={"lr": 3e-4, "n_classes": 10},
              tags=["baseline"], transport=t, settings=fast, api_key="secret")
    run.log({"loss": 1.0})
    assert run.finish(timeout=5)
    methods = [(r.method, r.path.rsplit("/", 1)[-1]) for r in t.requests]
    assert methods == [("PUT", run.id), ("POST", "points"), ("PATCH", run.id)]
    put = t.requests[0].json
    assert put == {"project": "digits", "name": "mlp", "config": {"lr": 3e-4, "n_classes": 10},
                   "tags": ["baseline"], "status": "running"}
    assert t.requests[2].json == {"status": "finished"}
    assert all(r.headers["Authorization"] == "Bearer secret" for r in t.requests)
    assert t.requests[1].headers["Content-Encoding"] == "gzip"
    assert not os.path.exists(run.spool_path)  # finished and fully sent: removed


def test_batches_are_columnar_with_fresh_ids_and_wall_times(fast):
    t = MemoryTransport()
    s = fast.with_overrides(batch_points=1000)
    run = Run(project="p", transport=t, settings=s)
    before = time.time()
    for i in range(1500):
        run.log({"loss": float(i), "lr": 0.1}, step=i)
    assert run.finish(timeout=5)
    batches = [r.json for r in _points_requests(t)]
    assert len(batches) >= 3  # at most 1000 points each
    assert all(sum(len(c["steps"]) for c in b["points"].values()) <= 1000 for b in batches)
    assert len({b["batch_id"] for b in batches}) == len(batches)
    col = batches[0]["points"]["loss"]
    assert len(col["steps"]) == len(col["values"]) == len(col["wall"])
    assert before <= col["wall"][0] <= time.time()
    assert t.series(run.id, "loss") == (list(range(1500)), [float(i) for i in range(1500)])


def test_network_errors_and_5xx_are_retried_with_the_same_batch_id(fast):
    t = MemoryTransport()
    run = Run(project="p", transport=t, settings=fast)
    run.log({"a": 1.0})
    run.flush(5)
    t.fail_next(2)  # connection errors
    t.fail_next(2, status=503)
    run.log({"a": 2.0})
    assert run.flush(5)
    assert run.finish(timeout=5)
    posts = _points_requests(t)
    assert len(posts) == 1 + 5
    assert len({r.json["batch_id"] for r in posts[1:]}) == 1
    assert t.series(run.id, "a") == ([0, 1], [1.0, 2.0])


def test_retry_after_is_honoured(fast):
    t = MemoryTransport()
    run = Run(project="p", transport=t, settings=fast)
    run.log({"a": 1.0})
    run.flush(5)
    t.fail_next(1, status=429, retry_after="1")
    run.log({"a": 2.0})
    assert run.finish(timeout=5)
    posts = _points_requests(t)
    assert posts[2].time - posts[1].time >= 0.95  # backoff alone would be ~0.01 s


def test_a_404_on_points_puts_the_run_again_then_retries(fast):
    t = MemoryTransport()
    run = Run(project="p", transport=t, settings=fast)
    run.log({"a": 1.0})
    run.flush(5)
    del t.runs[run.id]  # e.g. deleted on the server, or a fresh database
    run.log({"a": 2.0})
    assert run.finish(timeout=5)
    tail = [(r.method, r.path.rsplit("/", 1)[-1]) for r in t.requests[2:]]
    assert tail == [("POST", "points"), ("PUT", run.id), ("POST", "points"), ("PATCH", run.id)]
    assert t.series(run.id, "a") == ([0, 1], [1.0, 2.0])


@pytest.mark.parametrize("status", [400, 413, 422])
def test_other_4xx_are_not_retried_and_the_points_are_counted_as_dropped(fast, status, caplog):
    t = MemoryTransport()
    run = Run(project="p", transport=t, settings=fast)
    run.log({"a": 1.0})
    run.flush(5)
    t.fail_next(1, status=status)
    run.log({"a": 2.0, "b": 3.0})
    run.flush(5)
    run.log({"a": 4.0})
    assert run.finish(timeout=5)
    posts = _points_requests(t)
    assert len(posts) == 3
    assert run.dropped == 2
    assert t.dropped[run.id] == 2  # reported in the next batch
    assert any(f"HTTP {status}" in r.getMessage() for r in caplog.records)


def test_a_refused_api_key_stops_sending_and_keeps_the_spool(fast, caplog):
    t = MemoryTransport()
    t.fail_next(1, status=401)
    run = Run(project="p", transport=t, settings=fast)
    for i in range(20):
        run.log({"a": float(i)})
    assert not run.finish(timeout=5)
    assert len(t.requests) == 1
    assert list_segments(run.spool_path)
    assert any("API key" in r.getMessage() for r in caplog.records)


def test_diagnoses_reach_run_and_callback_from_the_sender_thread(fast, caplog):
    t = MemoryTransport()
    seen = []

    def on_diagnosis(run, d):
        seen.append((d["kind"], threading.current_thread().name))
        raise RuntimeError("a broken callback is logged, not raised")

    run = Run(project="p", transport=t, settings=fast, on_diagnosis=on_diagnosis)
    diverging = {"kind": "divergence", "subject": "loss", "severity": "error", "title": "t"}
    t.diagnoses[run.id] = [diverging]
    run.log({"loss": 1.0})
    run.flush(5)
    run.log({"loss": 2.0})
    run.flush(5)  # the same diagnosis again: no second call
    t.diagnoses[run.id] = [diverging, dict(diverging, kind="dead_relu", subject="fc1")]
    run.log({"loss": 3.0})
    assert run.finish(timeout=5)
    assert [k for k, _ in seen] == ["divergence", "dead_relu"]
    assert all(name.startswith("losslens-sender") for _, name in seen)
    assert [d["kind"] for d in run.diagnoses] == ["divergence", "dead_relu"]
    assert sum("on_diagnosis raised" in r.getMessage() for r in caplog.records) == 2


def test_model_checks_are_put_by_the_sender(fast):
    t = MemoryTransport()
    run = Run(project="p", transport=t, settings=fast)
    finding = {"kind": "missing_bias", "severity": "warning", "subject": "fc1", "title": "t",
               "recommendation": "r", "evidence": {"ratio": float("inf")}}
    run.report_model_checks([finding])
    assert run.finish(timeout=5)
    assert t.model_checks[run.id] == [dict(finding, evidence={"ratio": "Infinity"})]
    with pytest.raises(TypeError, match="list of dicts"):
        run.report_model_checks(["not a dict"])


def test_log_never_raises_when_nothing_listens_and_warns_once(caplog):
    caplog.set_level(logging.WARNING, logger="client_sdk")
    run = Run(project="p", url=f"http://127.0.0.1:{free_port()}")
    for i in range(2000):
        run.log({"loss": float(i), "lr": 0.1})
        if i % 500 == 0:
            time.sleep(0.3)  # let the sender try (and fail) a few times
    t0 = time.monotonic()
    assert not run.finish(timeout=10)  # gives up after a few refused connections
    assert time.monotonic() - t0 < 10
    assert sum("sending to" in r.getMessage() for r in caplog.records) == 1
    assert list_segments(run.spool_path)  # everything waits in the spool for `losslens sync`


def test_finish_returns_within_its_timeout_when_the_server_never_answers():
    with socket.socket() as hole:  # accepts connections (backlog) but never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        run = Run(project="p", url=f"http://127.0.0.1:{hole.getsockname()[1]}")
        run.log({"loss": 1.0})
        t0 = time.monotonic()
        assert not run.finish(timeout=1.5)
        assert time.monotonic() - t0 < 2.5


def test_context_manager_marks_failed_on_an_exception(fast):
    t = MemoryTransport()
    with pytest.raises(ZeroDivisionError):
        with Run(project="p", transport=t, settings=fast) as run:
            run.log({"loss": 1.0})
            1 / 0  # noqa: B018
    assert t.runs[run.id]["status"] == "failed"
    with Run(project="p", transport=t, settings=fast) as ok:
        ok.log({"loss": 1.0})
    assert t.runs[ok.id]["status"] == "finished"


def test_several_runs_in_one_process(fast):
    t = MemoryTransport()
    runs = [Run(project="p", name=f"r{i}", transport=t, settings=fast) for i in range(3)]
    for _ in range(100):
        for i, run in enumerate(runs):
            run.log({"loss": float(i)})
    for run in runs:
        assert run.finish(timeout=5)
    assert len({r.id for r in runs}) == 3
    assert [t.num_points(r.id) for r in runs] == [100, 100, 100]


def test_a_run_with_no_points_is_still_created_and_finished(fast):
    t = MemoryTransport()
    run = Run(project="p", transport=t, settings=fast)
    assert run.finish(status="crashed", timeout=5)
    assert t.runs[run.id]["status"] == "crashed"
    assert run.finish(timeout=5)  # a second call does nothing


def test_resuming_a_run_id_resends_what_an_earlier_process_left(fast):
    t = MemoryTransport()
    t.down = True
    first = Run(project="p", transport=t, settings=fast.with_overrides(finish_attempts=1))
    for i in range(10):
        first.log({"a": float(i)})
    assert not first.finish(timeout=2)
    t.down = False
    second = Run(project="p", run_id=first.id, transport=t, settings=fast)
    second.log({"a": 10.0}, step=10)
    assert second.finish(timeout=5)
    assert t.series(first.id, "a")[0] == list(range(11))


def test_a_custom_transport_answer_via_handler(fast):
    def handler(req):
        if req.method == "PATCH":
            return Response(500, {}, b"")
        return None

    t = MemoryTransport(handler=handler)
    run = Run(project="p", transport=t,
              settings=fast.with_overrides(finish_attempts=1))
    run.log({"a": 1.0})
    assert not run.finish(timeout=0.5)  # the status never got through
    assert t.num_points(run.id) == 1
    assert os.path.isfile(os.path.join(run.spool_path, "run.json"))  # for `losslens sync`


def test_finish_from_the_diagnosis_callback_does_not_deadlock(fast):
    t = MemoryTransport()
    run = Run(project="p", transport=t, settings=fast,
              on_diagnosis=lambda r, d: r.finish(status="failed", timeout=30))
    t.diagnoses[run.id] = [{"kind": "divergence", "subject": "loss"}]
    run.log({"loss": float("nan")})
    assert run._sender.done.wait(5)
    assert t.runs[run.id]["status"] == "failed"


def test_a_spooled_batch_that_vanished_is_counted_not_fatal(fast, caplog):
    t = MemoryTransport()
    t.down = True
    run = Run(project="p", transport=t, settings=fast)
    run.log({"a": 1.0, "b": 2.0})
    run.flush(0.2)  # spooled, sending fails, the body is dropped from memory
    for seg in list_segments(run.spool_path):
        os.unlink(seg)
    t.down = False
    run.log({"a": 3.0})
    assert run.finish(timeout=5)
    assert run.dropped == 2 and t.dropped[run.id] == 2
    assert t.series(run.id, "a") == ([1], [3.0])
    assert any("cannot read a spooled batch" in r.getMessage() for r in caplog.records)


def test_a_batch_the_server_keeps_failing_on_is_set_aside_not_blocking(fast, caplog):
    poison: set = set()

    def handler(req):
        if req.path.endswith("/points") and (not poison or req.json["batch_id"] in poison):
            poison.add(req.json["batch_id"])
            return Response(500, {}, b'{"detail": "boom"}')
        return None

    t = MemoryTransport(handler=handler)
    run = Run(project="p", transport=t, settings=fast)
    run.log({"a": 0.0})
    run.flush(1)  # five 500s, then set aside
    for i in range(1, 5):
        run.log({"a": float(i)})
    assert not run.finish(timeout=5)  # not complete: one batch waits in the spool
    assert t.series(run.id, "a")[0] == [1, 2, 3, 4]
    assert t.runs[run.id]["status"] == "finished"
    assert any("keeps failing" in r.getMessage() for r in caplog.records)
    poison.clear()
    poison.add("none")
    result = sync_spool(run.spool_path, transport=t)
    assert result.ok and result.batches == 1
    assert t.series(run.id, "a")[0] == [0, 1, 2, 3, 4]


def test_a_quiet_run_sends_heartbeats(tmp_path, monkeypatch):
    """Nothing to send for HEARTBEAT_SECONDS: the sender tells the server it is alive."""
    import time

    import client_sdk
    from client_sdk import _sender
    from client_sdk.testing import MemoryTransport

    monkeypatch.setattr(_sender, "HEARTBEAT_SECONDS", 0.2)
    transport = MemoryTransport()
    run = client_sdk.Run(project="p", transport=transport, spool_dir=str(tmp_path))
    run.log({"loss": 1.0}, step=0)
    assert run.flush(timeout=10)
    time.sleep(1.0)
    run.finish(timeout=10)
    beats = [r for r in transport.requests if r.path.endswith("/heartbeat")]
    assert beats and all(r.method == "POST" for r in beats)
