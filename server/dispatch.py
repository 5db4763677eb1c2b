"""Asking for a run's diagnosis after ingest: debounced per run, then run in-process or queued.

One debounce rule: at most one pending diagnosis per run, and at most one diagnosis of a run
every ``interval`` seconds (per server process). ``force`` (a run that just finished) skips the
wait but still never queues a run twice. The job runs on a daemon thread, never in the request:

- no broker configured: the job is the diagnosis itself
  (:func:`server.diagnoses.service.diagnose_and_store`), in this process;
- ``LOSSLENS_BROKER_URL`` set: the job queues the Celery task (``worker.enqueue``), so a broker
  that is slow or down delays only this thread, never ingest.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("losslens.dispatch")

# A job that fails (the broker is down, the database hiccups, a run whose data breaks the
# code) is tried again this many times, after 2, 4, 8 ... intervals, then given up and logged:
# a run that ends while Redis is down still gets its final diagnosis once Redis is back.
MAX_RETRIES = 5


class Dispatcher:
    """Runs ``job(run_id)`` on one daemon thread, debounced per run."""

    def __init__(self, job: Callable[[str], object], interval: float):
        self._job = job
        self._interval = interval
        self._cond = threading.Condition()
        self._heap: list[tuple[float, str]] = []
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._again: dict[str, bool] = {}
        self._failures: dict[str, int] = {}
        self._last_start: dict[str, float] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="losslens-diagnose", daemon=True)
        self._thread.start()

    def request(self, run_id: str, force: bool = False) -> None:
        with self._cond:
            if self._closed or run_id in self._queued:
                return
            if run_id in self._running:
                # Points came in during the run's diagnosis: look again once it is done.
                self._again[run_id] = self._again.get(run_id, False) or force
                return
            self._push(run_id, force)

    def _push(self, run_id: str, force: bool, delay: float = 0.0) -> None:
        now = time.monotonic()
        due = now if force else max(now, self._last_start.get(run_id, -1e9) + self._interval)
        due += delay
        self._queued.add(run_id)
        heapq.heappush(self._heap, (due, run_id))
        self._cond.notify()

    def idle(self) -> bool:
        """True when nothing is queued or running (for tests and shutdown)."""
        with self._cond:
            return not (self._queued or self._running)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                _, run_id = heapq.heappop(self._heap)
                self._queued.discard(run_id)
                self._running.add(run_id)
                self._last_start[run_id] = now = time.monotonic()
                if len(self._last_start) > 10_000:  # forget runs not seen for an interval
                    old = now - self._interval
                    self._last_start = {r: t for r, t in self._last_start.items() if t > old}
            failed = False
            try:
                self._job(run_id)
            except Exception:  # a failing diagnosis must never stop the others
                failed = True
                log.exception("diagnosis of run %s failed", run_id)
            with self._cond:
                self._running.discard(run_id)
                if self._closed:
                    continue
                if failed:
                    tries = self._failures.get(run_id, 0) + 1
                    if tries <= MAX_RETRIES:
                        self._failures[run_id] = tries
                        self._again.pop(run_id, None)
                        self._push(run_id, False, delay=self._interval * 2**tries)
                        continue
                    log.error("giving up on the diagnosis of run %s after %d tries", run_id, tries)
                self._failures.pop(run_id, None)
                if run_id in self._again:
                    self._push(run_id, self._again.pop(run_id))
