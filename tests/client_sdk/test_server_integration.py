"""The SDK against a REAL Losslens server (``python -m server.cli serve`` on SQLite): every
point logged is read back exactly, through server kills, offline runs and killed trainers."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import client_sdk
from client_sdk import Run, sync_spool

from .conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
KEYS = [f"k{i:02d}" if i % 4 else f"group/k{i:02d}" for i in range(20)]


def _value(key_index: int, step: int) -> float:
    if step % 997 == 13:
        return (math.nan, math.inf, -math.inf)[(step + key_index) % 3]
    return math.sin(step * 0.001 + key_index) * 10 ** (key_index % 7 - 3)


def _expected(value: float):
    """``value`` as the server answers it (non-finite values as strings)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _check_exact(server: ServerProcess, run_id: str, steps: range) -> None:
    series = server.series(run_id, KEYS)
    for ki, key in enumerate(KEYS):
        s = series[key]
        assert s["steps"] == list(steps), key
        assert s["total"] == len(steps) and not s["downsampled"]
        want = [_expected(_value(ki, st)) for st in steps]
        bad = [(st, got, w) for st, got, w in zip(steps, s["values"], want, strict=True)
               if got != w]
        assert not bad, f"{key}: {bad[:3]}"


def _fast(url: str) -> client_sdk.Settings:
    return client_sdk.Settings.from_env().with_overrides(url=url, backoff_max=0.5)


@pytest.mark.slow
def test_100k_points_over_20_keys_read_back_exactly(server):
    run = Run(project="sdk-it", name="exact", config={"lr": 3e-4}, settings=_fast(server.url))
    n_steps = 5000  # x 20 keys = 100,000 points
    for step in range(n_steps):
        run.log({k: _value(i, step) for i, k in enumerate(KEYS)}, step=step)
    assert run.finish(timeout=60)
    info = server.run(run.id)
    assert info["num_points"] == 100_000 and info["status"] == "finished"
    assert info["dropped_points"] == 0
    _check_exact(server, run.id, range(n_steps))
    assert not os.path.exists(run.spool_path)


@pytest.mark.slow
def test_server_killed_mid_run_then_restarted_loses_and_duplicates_nothing(fresh_server,
                                                                           caplog):
    run = Run(project="sdk-it", name="server-kill", settings=_fast(fresh_server.url))
    n_steps = 3000
    for step in range(n_steps):
        run.log({k: _value(i, step) for i, k in enumerate(KEYS)}, step=step)
        if step == 1000:
            fresh_server.kill()  # SIGKILL, maybe in the middle of a batch
        if step == 2000:
            fresh_server.start()  # same port, same database
        time.sleep(0.0005 if 1000 <= step < 2000 else 0.0001)  # down for ~1 s + restart
    assert run.finish(timeout=60)
    assert any("sending to" in r.getMessage() for r in caplog.records)  # it was down
    info = fresh_server.run(run.id)
    assert info["num_points"] == n_steps * 20 and info["status"] == "finished"
    _check_exact(fresh_server, run.id, range(n_steps))


@pytest.mark.slow
def test_a_deleted_run_is_created_again_and_filled(server):
    run = Run(project="sdk-it", name="deleted", settings=_fast(server.url))
    for step in range(100):
        run.log({k: _value(i, step) for i, k in enumerate(KEYS)}, step=step)
    assert run.flush(30)
    assert server.delete(f"/api/v1/runs/{run.id}") == 204
    for step in range(100, 200):
        run.log({k: _value(i, step) for i, k in enumerate(KEYS)}, step=step)
    assert run.finish(timeout=30)
    _check_exact(server, run.id, range(100, 200))


@pytest.mark.slow
def test_offline_run_then_sync_spool(server, spool_root):
    run = Run(project="sdk-it", name="offline", tags=["offline"], mode="offline",
              settings=_fast(server.url))
    for step in range(2000):
        run.log({k: _value(i, step) for i, k in enumerate(KEYS)}, step=step)
        if step % 500 == 0:
            run.flush(10)
    run.report_model_checks([{"kind": "missing_bias", "severity": "warning", "subject": "fc1",
                              "title": "fc1 has no bias", "recommendation": "add one",
                              "evidence": {}}])
    assert run.finish(timeout=10)
    with pytest.raises(OSError):
        server.run(run.id)  # nothing was sent
    progress = []
    result = sync_spool(str(spool_root), url=server.url,
                        progress=lambda done, total: progress.append((done, total)))
    assert result.ok and result.runs == 1 and result.points == 40_000
    assert progress[-1][0] == progress[-1][1] == result.batches
    info = server.run(run.id)
    assert info["num_points"] == 40_000 and info["status"] == "finished"
    assert info["tags"] == ["offline"]
    _check_exact(server, run.id, range(2000))
    assert not os.path.exists(run.spool_path)


TRAINER = """
import sys, time, client_sdk
run = client_sdk.init(project="sdk-it", name="killed", url=sys.argv[1])
print(run.id, flush=True)
step = 0
while True:
    client_sdk.log({{k: float(step) for k in {keys!r}}}, step=step)
    if step % 50 == 0:
        print(step, time.time(), flush=True)
    step += 1
    time.sleep(0.001)
"""


@pytest.mark.slow
def test_a_sigkilled_trainer_s_spool_is_replayed_by_sync(server, spool_root):
    # The trainer logs to a dead URL (nothing survives in memory: only the spool counts).
    dead = f"http://127.0.0.1:{server.port + 1 if server.port < 65000 else 1024}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOSSLENS_DIR=str(spool_root))
    code = textwrap.dedent(TRAINER.format(keys=KEYS[:5]))
    proc = subprocess.Popen([sys.executable, "-c", code, dead], stdout=subprocess.PIPE,
                            text=True, env=env)
    run_id = proc.stdout.readline().strip()
    progress: list[tuple[int, float]] = []
    started = time.time()
    while time.time() - started < 3.0:
        step, wall = proc.stdout.readline().split()
        progress.append((int(step), float(wall)))
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    logged_early = max(s for s, w in progress if w < killed_at - 1.5)
    assert logged_early > 100

    result = sync_spool(str(spool_root), url=server.url)
    assert result.ok, result.summary()
    series = server.series(run_id, KEYS[:5])
    for key in KEYS[:5]:
        steps = series[key]["steps"]
        assert steps[: logged_early + 1] == list(range(logged_early + 1)), key
        assert len(steps) == len(set(steps))
    assert server.run(run_id)["status"] == "crashed"


@pytest.mark.slow
def test_dropped_points_reach_the_run(server):
    s = _fast(server.url).with_overrides(max_queue_points=100, flush_interval=30.0,
                                         batch_points=10**6)
    run = Run(project="sdk-it", name="dropped", settings=s)
    for step in range(10):
        run.log({k: float(step) for k in KEYS}, step=step)  # 20 points a call
    assert run.dropped == 100
    assert run.finish(timeout=30)
    info = server.run(run.id)
    assert (info["num_points"], info["dropped_points"]) == (100, 100)
