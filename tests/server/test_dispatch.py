"""The debounced dispatcher, with a real thread and a job that records what it was asked."""

from __future__ import annotations

import threading
import time

from server.dispatch import MAX_RETRIES, Dispatcher


class Recorder:
    def __init__(self, hold: float = 0.0):
        self.calls: list[tuple[str, float]] = []
        self.hold = hold
        self.lock = threading.Lock()

    def __call__(self, run_id: str) -> None:
        with self.lock:
            self.calls.append((run_id, time.monotonic()))
        time.sleep(self.hold)


def _wait_idle(d: Dispatcher, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not d.idle():
        assert time.monotonic() < end, "dispatcher never went idle"
        time.sleep(0.01)


def test_many_requests_for_one_run_make_one_job():
    job = Recorder()
    d = Dispatcher(job, interval=0.2)
    try:
        for _ in range(100):
            d.request("a")
        _wait_idle(d)
        assert [r for r, _ in job.calls] == ["a"]
    finally:
        d.close()


def test_a_run_is_diagnosed_at_most_once_per_interval():
    job = Recorder()
    d = Dispatcher(job, interval=0.3)
    try:
        d.request("a")
        _wait_idle(d)
        d.request("a")
        _wait_idle(d)
        (_, t1), (_, t2) = job.calls
        assert t2 - t1 >= 0.3
    finally:
        d.close()


def test_requests_during_a_job_rerun_it_after_and_force_skips_the_wait():
    job = Recorder(hold=0.2)
    d = Dispatcher(job, interval=60)
    try:
        d.request("a")
        time.sleep(0.05)  # the job is running now
        d.request("a", force=True)  # e.g. the run finished meanwhile
        _wait_idle(d)
        assert [r for r, _ in job.calls] == ["a", "a"]
    finally:
        d.close()


def test_a_poison_run_is_retried_a_bounded_number_of_times_and_stops_no_other():
    seen = []

    def job(run_id):
        seen.append(run_id)
        if run_id == "poison":
            raise RuntimeError("boom")

    d = Dispatcher(job, interval=0)
    try:
        d.request("poison")
        d.request("b")
        _wait_idle(d)
        assert seen.count("poison") == 1 + MAX_RETRIES
        assert seen.count("b") == 1
        d.request("b")  # the dispatcher still works afterwards
        _wait_idle(d)
        assert seen.count("b") == 2
    finally:
        d.close()


def test_a_job_that_fails_for_a_while_is_retried_with_backoff_until_it_succeeds():
    calls = []

    def job(run_id):  # e.g. the broker is down for the first two tries
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise ConnectionError("broker down")

    d = Dispatcher(job, interval=0.05)
    try:
        d.request("a", force=True)
        _wait_idle(d)
        assert len(calls) == 3
        # backoff: 2 then 4 intervals after the failing tries
        assert calls[1] - calls[0] >= 0.1 and calls[2] - calls[1] >= 0.2
    finally:
        d.close()
