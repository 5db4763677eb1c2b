"""The sender: one daemon thread per run that drains the queue, spools, posts and retries.

Every batch is written to the spool before it is posted and acknowledged there once the server
has it, so the records pending in memory are an index into the spool (bodies of the newest few
kept in memory to avoid reading them back). When the spool cannot be written, batches stay in
memory up to ``max_queue_points`` points; beyond that they are dropped and counted.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING

from . import _api
from ._api import Api, Backoff
from ._closing import ClosingMixin
from ._encode import build_columns, encode_points, gzip_bytes, new_batch_id
from ._spool import KIND_MODEL_CHECKS, KIND_POINTS, Record, RunSpool, SpoolFull
from ._transport import HTTPTransport, Transport

if TYPE_CHECKING:
    from ._run import Run

logger = logging.getLogger("client_sdk")

MEMORY_BODY_BYTES = 16 << 20  # bodies of spooled records kept in memory to post from
SPOOL_RETRY_SECONDS = 30.0  # after a disk error, try the spool again this much later
SEND_BUDGET_SECONDS = 1.0  # then go back to draining the queue
SERVER_ERRORS_PER_BATCH = 5  # 5xx answers to one batch before it is set aside
# With nothing to send for this long, tell the server the process is alive: a run silent for
# the server's LOSSLENS_HEARTBEAT_TIMEOUT (default 300 s) is marked crashed.
HEARTBEAT_SECONDS = 30.0


class Sender(ClosingMixin):
    """Moves one run's points from its queue to the spool and the server."""

    def __init__(self, run: Run, transport: Transport | None, forked_child: bool = False):
        self.run = run
        s = run.settings
        self.settings = s
        self.online = s.mode == "online"
        self.forked_child = forked_child
        self.spool = RunSpool(s.spool_root, run.id, s.spool_max_bytes, s.segment_max_bytes)
        self.spool.forked_child = forked_child
        self.spool_ok = self._spool_opened = False
        self._spool_retry_at = 0.0
        self.api: Api | None = None
        if self.online:
            self.api = Api(transport or HTTPTransport(run.url), s.api_key, s.request_timeout)
        self.pending: deque[Record] = deque()
        self.memory_points = 0  # points in records held only in memory
        self.body_bytes = 0  # bytes of bodies kept in memory for spooled records
        self.carry_dropped = 0  # dropped points not yet reported in a formed batch
        self.run_put = False
        self.sending_disabled = False
        self.backoff = Backoff(s.backoff_base, s.backoff_max)
        self.next_try = 0.0
        self.failures_in_a_row = 0  # failed attempts (network, 5xx) since the last success
        self.set_aside = 0  # batches the server kept failing on, left in the spool
        self.done = threading.Event()
        self.complete = False  # finished with everything on the server (offline: spooled)
        self.aborted = threading.Event()
        self._warned: set = set()
        self._active_diagnoses: set = set()
        self.thread: threading.Thread | None = None
        self.last_contact = time.monotonic()  # last answer from the server

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        t = threading.Thread(target=self.main, name=f"losslens-sender-{self.run.id[:8]}",
                             daemon=True)
        try:
            t.start()
        except RuntimeError:  # interpreter shutting down: finish() runs the loop inline
            return
        self.thread = t

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def main(self) -> None:
        try:
            self._open_spool()
            while True:
                gen, closing = self._cycle(self._wait_timeout())
                if closing:
                    self._finish()
                    return
                self._send_pending(time.monotonic() + SEND_BUDGET_SECONDS)
                self._heartbeat_if_quiet()
                if not self.online or not self.pending:
                    self.run._flush_reached(gen)
        except Exception:  # noqa: BLE001 - never raise into the training process
            logger.exception("losslens: the sender of run %s stopped on an error", self.run.id)
        finally:
            self.done.set()

    def after_fork_in_child(self) -> None:
        """The parent's sender, as copied into a forked child: detach it, never run it."""
        self.aborted.set()
        self.spool.after_fork_in_child()
        close = getattr(self.api.transport, "after_fork_in_child", None) if self.api else None
        if close is not None:
            close()

    def _wait_timeout(self) -> float:
        timeout = self.settings.flush_interval
        if self.online and self.pending and not self.sending_disabled:
            timeout = min(timeout, max(0.0, self.next_try - time.monotonic()))
        return timeout

    def _cycle(self, timeout: float):
        entries, controls, dropped, gen, closing = self.run._take(timeout)
        self._form(entries, controls, dropped, closing)
        return gen, closing

    # ---------------------------------------------------------------- forming records

    def _open_spool(self) -> None:
        try:
            adopted = self.spool.open(self.run._meta())
        except OSError as exc:
            self._spool_failed(exc)
            return
        self.spool_ok = self._spool_opened = True
        if adopted:
            logger.info("losslens: resending %d spooled batches of run %s", len(adopted),
                        self.run.id)
            if self.online:
                self.pending.extend(adopted)

    def _form(self, entries, controls: list[bytes], dropped: int, closing: bool) -> None:
        """Turn queued entries into spooled records; ``dropped`` (plus what was lost since the
        last batch) travels in the first batch."""
        dropped += self.carry_dropped
        self.carry_dropped = 0
        for body in controls:
            self._store(KIND_MODEL_CHECKS, uuid.uuid4().hex, 0, body, 0)
        for cols, n in build_columns(entries, self.settings.batch_points):
            bid = new_batch_id()
            self._store(KIND_POINTS, bid, n, gzip_bytes(encode_points(bid, cols, dropped)),
                        dropped)
            dropped = 0
        if dropped and closing and self.online:  # report drops even with no points left
            bid = new_batch_id()
            self._store(KIND_POINTS, bid, 0, gzip_bytes(encode_points(bid, {}, dropped)),
                        dropped)
        elif dropped:
            self.carry_dropped += dropped

    def _store(self, kind: int, rid: str, n: int, body: bytes, dropped_inside: int) -> None:
        if not self.spool_ok and 0 < self._spool_retry_at <= time.monotonic():
            if self._spool_opened:
                self.spool_ok = True
            else:
                self._open_spool()
        if self.spool_ok:
            try:
                rec = self.spool.append(kind, rid, n, body)
            except SpoolFull:
                self._warn_once("full", "losslens: the spool under %s is full (%d bytes, "
                                "LOSSLENS_SPOOL_MAX_BYTES); new points are dropped and counted",
                                self.settings.spool_root, self.settings.spool_max_bytes)
                self._lose(n, dropped_inside)
                return
            except OSError as exc:
                self._spool_failed(exc)
            else:
                if not self.online:
                    return
                if self.body_bytes + len(body) <= MEMORY_BODY_BYTES:
                    self.body_bytes += len(body)
                else:
                    rec.body = None
                self.pending.append(rec)
                return
        if not self.online or self.memory_points + n > self.settings.max_queue_points:
            self._lose(n, dropped_inside)
            return
        self.memory_points += n
        self.pending.append(Record(kind, rid, n, body))

    def _lose(self, n_points: int, reported_inside: int = 0) -> None:
        """``n_points`` are lost now; ``reported_inside`` were lost earlier and counted then,
        but their report to the server travelled in the lost batch."""
        self.carry_dropped += n_points + reported_inside
        self.run._count_lost(n_points)

    def _spool_failed(self, exc: OSError) -> None:
        self.spool_ok = False
        self._spool_retry_at = time.monotonic() + SPOOL_RETRY_SECONDS
        self._warn_once(
            "spool", "losslens: cannot write the spool %s (%s); training goes on, points are "
            "kept in memory (up to %d) and the rest dropped and counted%s",
            self.spool.dir, exc, self.settings.max_queue_points,
            "" if self.online else "; offline mode: they are lost at exit")

    # ---------------------------------------------------------------- sending

    def _send_pending(self, until: float, deadline: float | None = None) -> None:
        if not self.online or self.sending_disabled or not self.pending:
            return
        if time.monotonic() < self.next_try:
            return
        timeout = None if deadline is None else deadline - time.monotonic()
        if not self.run_put and not self._put_run(timeout):
            return
        missing = 0
        while self.pending and not self.aborted.is_set() and time.monotonic() < until:
            rec = self.pending[0]
            timeout = None if deadline is None else deadline - time.monotonic()
            try:
                out = self.api.send_record(self.run.id, rec, timeout)
            except OSError as exc:  # its spool segment is gone or damaged
                self._warn_once("read", "losslens: cannot read a spooled batch of run %s (%s);"
                                " its %d points are dropped", self.run.id, exc, rec.n_points)
                self._done_with(rec)
                self._lose(rec.n_points)
                continue
            if out.ok:
                self._sent(rec, out)
                missing = 0
            elif out.kind == _api.MISSING and missing == 0:
                missing += 1  # the run is gone (e.g. a fresh database): create it, then retry
                self.run_put = False
                if not self._put_run(timeout):
                    return
            elif out.kind == _api.REJECTED or out.kind == _api.MISSING:
                self._warn_once(("rejected", out.status), "losslens: the server rejected a "
                                "batch of run %s (%s); its %d points are dropped", self.run.id,
                                out.describe(), rec.n_points)
                self._done_with(rec)
                self._lose(rec.n_points)
            elif not self._failed(out, rec):
                return

    def _put_run(self, timeout: float | None = None) -> bool:
        # "running" until every point is in: the final status comes with the last PATCH
        out = self.api.put_run(self.run.id, self.run._meta(), "running", timeout=timeout)
        if out.ok:
            self.run_put = True
            self._recovered()
            return True
        if out.kind in (_api.REJECTED, _api.MISSING):
            self.sending_disabled = True
            logger.error("losslens: the server refused run %s (%s); points stay in the spool "
                         "%s for `losslens sync`", self.run.id, out.describe(), self.spool.dir)
            return False
        return self._failed(out)

    def _sent(self, rec: Record, out: _api.Outcome) -> None:
        self._done_with(rec)
        self._recovered()
        if rec.kind == KIND_POINTS and isinstance(out.data, dict):
            diagnoses = out.data.get("diagnoses")
            if isinstance(diagnoses, list):
                self._on_diagnoses(diagnoses)

    def _done_with(self, rec: Record) -> None:
        self.pending.popleft()
        if rec.segment is None:
            self.memory_points -= rec.n_points
        else:
            if rec.body is not None:
                self.body_bytes -= len(rec.body)
            try:
                self.spool.ack(rec)
            except OSError as exc:
                self._warn_once("ack", "losslens: cannot record acks in %s (%s)",
                                self.spool.dir, exc)

    def _failed(self, out: _api.Outcome, rec: Record | None = None) -> bool:
        """Handle a failed request; True when the caller may go on with the next record."""
        if out.kind == _api.UNAUTHORIZED:
            self.sending_disabled = True
            logger.error("losslens: the server refused the API key (%s); run %s is kept in "
                         "the spool %s: fix LOSSLENS_API_KEY and run `losslens sync`",
                         out.describe(), self.run.id, self.spool.dir)
            return False
        self.failures_in_a_row += 1
        if rec is not None and not out.network and out.status not in (408, 429):
            rec.failures += 1
            if rec.failures >= SERVER_ERRORS_PER_BATCH:
                self._set_aside(rec, out)
                return True
        delay = self.backoff.next_delay(out.retry_after)
        self.next_try = time.monotonic() + delay
        self._warn_once("net", "losslens: sending to %s failed (%s); retrying with backoff, points "
                        "are kept %s", self.run.url, out.describe(),
                        f"in the spool {self.spool.dir}" if self.spool_ok else "in memory")
        for rec in self.pending:  # read them back from disk later
            if rec.body is not None and rec.segment is not None:
                self.body_bytes -= len(rec.body)
                rec.body = None
        return False

    def _set_aside(self, rec: Record, out: _api.Outcome) -> None:
        """A batch the server keeps failing on must not hold back the ones behind it: leave
        it unacknowledged in the spool (for ``losslens sync``) and go on."""
        self.pending.popleft()
        if rec.segment is None:
            self.memory_points -= rec.n_points
            self._lose(rec.n_points)
        elif rec.body is not None:
            self.body_bytes -= len(rec.body)
            rec.body = None
        self.set_aside += 1
        self._warn_once("aside", "losslens: the server keeps failing on a batch of run %s (%s);"
                        " it is left in the spool %s for `losslens sync`", self.run.id,
                        out.describe(), self.spool.dir)

    def _heartbeat_if_quiet(self) -> None:
        if (not self.online or self.sending_disabled or not self.run_put or self.pending
                or time.monotonic() - self.last_contact < HEARTBEAT_SECONDS):
            return
        self.last_contact = time.monotonic()  # one try per period, answered or not
        self.api.heartbeat(self.run.id, timeout=5.0)

    def _recovered(self) -> None:
        self.last_contact = time.monotonic()
        self.backoff.reset()
        self.failures_in_a_row = 0
        if "net" in self._warned:
            self._warned.discard("net")
            logger.info("losslens: sending to %s resumed", self.run.url)

    def _on_diagnoses(self, diagnoses: list) -> None:
        self.run.diagnoses = diagnoses
        active = {}
        for d in diagnoses:
            if isinstance(d, dict) and d.get("status", "active") == "active":
                active[(d.get("kind"), d.get("subject"))] = d
        new = [d for key, d in active.items() if key not in self._active_diagnoses]
        self._active_diagnoses = set(active)
        callback = self.run.on_diagnosis
        for d in new if callback is not None else ():
            try:
                callback(self.run, d)
            except Exception:  # noqa: BLE001 - a user callback must not stop the sender
                logger.exception("losslens: on_diagnosis raised for %s", d.get("kind"))

    def _warn_once(self, key, msg: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(msg, *args)
