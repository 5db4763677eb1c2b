"""Faults with real processes; each ends with an exact count of stored points.

4 training runs stream through the SDK into ``losslens serve`` on PostgreSQL while the server
is SIGKILLed and restarted, or PostgreSQL itself restarts.
"""

from __future__ import annotations

import glob
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

import client_sdk
from tests.e2e.procs import ServerProc, celery_worker, get_json, redis_server, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

KEYS = [f"k{i}" for i in range(10)]
STEPS = 1500


def _stream(url: str, spool: str, runs: list, stop_at: int = STEPS) -> None:
    # finish() keeps trying until its timeout: by default it gives up after a few failures
    # in a row when everything left is spooled, and under load the restarted server can
    # take longer than that to come back (the points would wait for `losslens sync`)
    settings = client_sdk.Settings.from_env().with_overrides(
        url=url, backoff_max=0.5, finish_attempts=1_000_000
    )
    run = client_sdk.Run(project="faults", settings=settings, spool_dir=spool)
    runs.append(run)
    for step in range(stop_at):
        run.log({k: math.sin(step / 50 + i) for i, k in enumerate(KEYS)}, step=step)
        time.sleep(0.002)  # ~3 s of training
    assert run.finish(timeout=120), f"run {run.id} did not flush"


def _four_runs(url: str, spool: str):
    runs: list = []
    threads = [threading.Thread(target=_stream, args=(url, spool, runs)) for _ in range(4)]
    for t in threads:
        t.start()
    return runs, threads


def _assert_exact(url: str, runs: list) -> None:
    assert len(runs) == 4
    for run in runs:
        info = get_json(f"{url}/api/v1/runs/{run.id}")
        assert info["num_points"] == STEPS * len(KEYS), run.id
        assert info["status"] == "finished" and info["dropped_points"] == 0
        series = get_json(f"{url}/api/v1/runs/{run.id}/series?keys={','.join(KEYS)}")["series"]
        for s in series:
            assert s["steps"] == list(range(STEPS)), s["key"]


def test_server_sigkilled_and_restarted_while_4_runs_stream(fresh_pg, tmp_path):
    server = ServerProc(fresh_pg, tmp_path)
    server.start()
    try:
        runs, threads = _four_runs(server.url, str(tmp_path / "spool"))
        time.sleep(1.0)
        server.kill()  # maybe in the middle of a batch's transaction
        time.sleep(1.0)
        server.start()
        for t in threads:
            t.join(180)
        _assert_exact(server.url, runs)
    finally:
        server.stop()


def _pg_cluster() -> tuple[str, str]:
    (conf,) = glob.glob("/etc/postgresql/*/main")
    return conf.split("/")[3], "main"


def test_postgres_restarted_while_4_runs_stream(fresh_pg, tmp_path):
    server = ServerProc(fresh_pg, tmp_path)
    server.start()
    version, cluster = _pg_cluster()
    try:
        runs, threads = _four_runs(server.url, str(tmp_path / "spool"))
        time.sleep(1.0)
        subprocess.run(
            [
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                version,
                cluster,
                "restart",
                "-m",
                "fast",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for t in threads:
            t.join(180)
        # The server recovered by itself (no restart of ours): pre-ping replaced dead
        # connections, and the SDK resent what was answered 503.
        wait_for(lambda: get_json(f"{server.url}/readyz")["status"] == "ok", 30, "readyz")
        _assert_exact(server.url, runs)
    finally:
        server.stop()
        subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-t", "30"], timeout=40)


@pytest.mark.redis
def test_celery_worker_killed_mid_task_gets_the_task_redelivered(fresh_pg, tmp_path):

    with redis_server(tmp_path) as redis:
        server = ServerProc(fresh_pg, tmp_path, broker_url=redis.url, interval=3600)
        server.start()
        try:
            run_id = str(uuid.uuid4())
            _call(server.url, "PUT", f"/api/v1/runs/{run_id}", {"project": "faults"})
            # A run big enough that its diagnosis takes a while, with a NaN to find.
            n = 200_000
            for key in ("loss", *(f"grad_norm/layer{i}" for i in range(8))):
                values = [1.0 / (1 + s / 1000) for s in range(n)]
                if key == "loss":
                    values[150_000] = "NaN"
                _call(
                    server.url,
                    "POST",
                    f"/api/v1/runs/{run_id}/points",
                    {
                        "batch_id": key.replace("/", "-"),
                        "points": {key: {"steps": list(range(n)), "values": values}},
                    },
                )
            log = tmp_path / "worker.log"
            with celery_worker(fresh_pg, redis.url, tmp_path) as worker:
                _call(server.url, "PATCH", f"/api/v1/runs/{run_id}", {"status": "finished"})
                wait_for(
                    lambda: b"Task losslens.diagnose_run" in log.read_bytes(),
                    30,
                    "the task to reach the worker",
                )
                children = subprocess.run(
                    ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True
                ).stdout.split()
                assert children, "no pool process"
                for pid in children:
                    os.kill(int(pid), signal.SIGKILL)
                found = wait_for(
                    lambda: [
                        d
                        for d in get_json(f"{server.url}/api/v1/runs/{run_id}/diagnoses")[
                            "diagnoses"
                        ]
                        if d["kind"] == "nan_loss"
                    ],
                    120,
                    "the redelivered task's diagnosis",
                )
            assert len(found) == 1 and found[0]["step_start"] == 150_000
            text = log.read_text()
            assert "Worker exited prematurely" in text, text[-3000:]  # killed while running it
            assert text.count("] received") >= 2 and "succeeded" in text  # redelivered, done
            kinds = [
                d["kind"]
                for d in get_json(f"{server.url}/api/v1/runs/{run_id}/diagnoses")["diagnoses"]
            ]
            assert len(kinds) == len(set(kinds))  # no duplicates
        finally:
            server.stop()


def _call(url: str, method: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        url + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


TRAINER = """
import sys, time, client_sdk
run = client_sdk.init(project="faults", name="killed", url=sys.argv[1], spool_dir=sys.argv[2])
print(run.id, flush=True)
step = 0
while True:
    client_sdk.log({"loss": 1.0 / (step + 1)}, step=step)
    step += 1
    time.sleep(0.01)
"""


def test_a_sigkilled_trainer_is_marked_crashed_and_its_spool_synced(fresh_pg, tmp_path):
    server = ServerProc(fresh_pg, tmp_path)
    server.env["LOSSLENS_HEARTBEAT_TIMEOUT"] = "2"
    server.start()
    spool = tmp_path / "spool"
    try:
        trainer = subprocess.Popen(
            [sys.executable, "-c", TRAINER, server.url, str(spool)],
            stdout=subprocess.PIPE,
            text=True,
        )
        run_id = trainer.stdout.readline().strip()
        wait_for(lambda: _status(server.url, run_id) == "running", 30, "the run to appear")
        time.sleep(1.5)
        trainer.kill()
        trainer.wait(10)
        trainer.stdout.close()
        wait_for(
            lambda: _status(server.url, run_id) == "crashed",
            30,
            "the run to be marked crashed once its heartbeat stopped",
        )
        before = get_json(f"{server.url}/api/v1/runs/{run_id}")["num_points"]
        out = subprocess.run(
            [sys.executable, "-m", "server.cli", "sync", str(spool), "--url", server.url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        info = get_json(f"{server.url}/api/v1/runs/{run_id}")
        assert info["status"] == "crashed" and info["num_points"] >= before > 0
        steps = get_json(f"{server.url}/api/v1/runs/{run_id}/series?keys=loss")["series"][0]
        assert steps["steps"] == list(range(len(steps["steps"])))  # no gap, no duplicate
    finally:
        server.stop()


def _status(url: str, run_id: str) -> str | None:
    try:
        return get_json(f"{url}/api/v1/runs/{run_id}")["status"]
    except urllib.error.HTTPError as exc:
        exc.close()
        return None
