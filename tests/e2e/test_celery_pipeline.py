"""The production path end to end: SDK -> server -> PostgreSQL; Redis -> Celery worker -> rules.

Every component is a real process: redis-server, ``losslens serve`` with a broker URL,
``losslens worker``, PostgreSQL, and a training loop using the SDK.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.error

import pytest
import sqlalchemy

import client_sdk
from tests.e2e.procs import celery_worker, get_json, losslens_server, redis_server, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _get(url: str):
    """The JSON at url, or None while the SDK has not created the run yet (404)."""
    try:
        return get_json(url)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            return None
        raise


def _kinds(url: str, run_id: str) -> set[str]:
    found = _get(f"{url}/api/v1/runs/{run_id}/diagnoses")
    return {d["kind"] for d in found["diagnoses"] if d["status"] == "active"} if found else set()


def _num_points(url: str, run_id: str) -> int:
    run = _get(f"{url}/api/v1/runs/{run_id}")
    return run["num_points"] if run else 0


def _log_diverging(run, start: int, stop: int) -> None:
    for step in range(start, stop):
        loss = 2.3 * math.exp(step / 40) if step < 150 else float("nan")
        run.log({"loss": loss}, step=step)


def test_a_diverging_run_is_diagnosed_by_the_celery_worker_and_the_sdk_hears_it(fresh_pg, tmp_path):
    heard: list[str] = []
    got_nan = threading.Event()

    def on_diagnosis(run, diagnosis):
        heard.append(diagnosis["kind"])
        if diagnosis["kind"] == "nan_loss":
            got_nan.set()

    with (
        redis_server(tmp_path) as redis,
        celery_worker(fresh_pg, redis.url, tmp_path),
        losslens_server(fresh_pg, tmp_path, broker_url=redis.url) as url,
    ):
        run = client_sdk.Run(
            project="e2e",
            name="diverging",
            url=url,
            spool_dir=str(tmp_path / "spool"),
            on_diagnosis=on_diagnosis,
            config={"n_classes": 10, "lr": 1.0},
        )
        _log_diverging(run, 0, 200)
        wait_for(lambda: "nan_loss" in _kinds(url, run.id), 60, "nan_loss on the API")
        # The SDK hears diagnoses in the answers to its batches: keep training a little.
        step = 200
        while not got_nan.is_set() and step < 2000:
            _log_diverging(run, step, step + 5)
            step += 5
            got_nan.wait(0.2)
        run.finish(timeout=30)
        assert got_nan.is_set(), f"the callback heard only {heard}"
        assert any(d["kind"] == "nan_loss" for d in run.diagnoses)
        nan = next(
            d
            for d in get_json(f"{url}/api/v1/runs/{run.id}/diagnoses")["diagnoses"]
            if d["kind"] == "nan_loss"
        )
        assert nan["step_start"] == 150 and nan["severity"] == "critical"


def test_ingest_goes_on_while_redis_is_down_and_diagnoses_catch_up(fresh_pg, tmp_path):
    with (
        redis_server(tmp_path) as redis,
        celery_worker(fresh_pg, redis.url, tmp_path),
        losslens_server(fresh_pg, tmp_path, broker_url=redis.url) as url,
    ):
        run = client_sdk.Run(
            project="e2e", name="redis-outage", url=url, spool_dir=str(tmp_path / "spool")
        )
        redis.stop()
        _log_diverging(run, 0, 200)
        wait_for(
            lambda: _num_points(url, run.id) == 200, 30, "every point stored while Redis is down"
        )
        assert "nan_loss" not in _kinds(url, run.id)
        redis.start()  # same port: the server and worker reconnect on their own
        step = 200
        while "nan_loss" not in _kinds(url, run.id):
            assert step < 3000, "diagnoses never caught up after Redis came back"
            _log_diverging(run, step, step + 10)
            step += 10
            time.sleep(0.3)
        run.finish(timeout=30)
        assert get_json(f"{url}/api/v1/runs/{run.id}")["num_points"] == step


def test_a_run_whose_task_always_fails_does_not_stop_the_worker(fresh_pg, tmp_path):
    """A poison run (its stored chunks no longer decode): its task fails, is not retried
    forever, and the same worker process goes on diagnosing the other runs."""
    with (
        redis_server(tmp_path) as redis,
        celery_worker(fresh_pg, redis.url, tmp_path) as worker,
        losslens_server(fresh_pg, tmp_path, broker_url=redis.url) as url,
    ):
        spool = str(tmp_path / "spool")
        bad = client_sdk.Run(project="e2e", name="poison", url=url, spool_dir=spool)
        for step in range(100):
            bad.log({"loss": 1.0}, step=step)
        wait_for(lambda: _num_points(url, bad.id) == 100, 30, "the poison run's points stored")
        engine = sqlalchemy.create_engine(fresh_pg)
        with engine.begin() as conn:
            changed = conn.execute(
                sqlalchemy.text(
                    "UPDATE chunks SET steps = :junk WHERE series_id IN "
                    "(SELECT id FROM series WHERE run_id = :run)"
                ),
                {"junk": b"\xff" * 7, "run": bad.id},
            ).rowcount
        engine.dispose()
        assert changed >= 1
        bad.log({"loss": 1.0}, step=100)  # a new batch: its diagnosis is dispatched again
        log = tmp_path / "worker.log"
        wait_for(lambda: b"unknown chunk codec" in log.read_bytes(), 60,
                 "the poison run's task to fail in the worker")

        good = client_sdk.Run(project="e2e", name="after-poison", url=url, spool_dir=spool)
        _log_diverging(good, 0, 200)
        wait_for(lambda: "nan_loss" in _kinds(url, good.id), 60, "the next run diagnosed")
        assert worker.poll() is None, "the worker process died"
        good.finish(timeout=30)
        bad.finish(timeout=30)
        # one failure per dispatch (new points, the final one), never a retry loop
        failures = log.read_text().count("unknown chunk codec 255')")
        assert 1 <= failures <= 5, f"the poison run's task failed {failures} times"
