"""The last round of a sender, when its run finishes: spool the rest, send it with a deadline
(giving up early after a few failed attempts when everything left is in the spool), PATCH the
final status, then close (and maybe remove) the spool directory."""

from __future__ import annotations

import logging
import time

from . import _api

logger = logging.getLogger("client_sdk")


class ClosingMixin:
    """Part of :class:`client_sdk._sender.Sender`: the methods used once ``finish()`` began."""

    def _finish(self) -> None:
        run = self.run
        status, deadline = run._final_status, run._deadline
        if not self.forked_child and self.spool_ok:
            try:
                self.spool.update_meta(run._meta())
            except OSError as exc:
                self._spool_failed(exc)
        sent_all = patched = False
        # a last round: try now, then give up after a few network failures in a row
        self.next_try = 0.0
        self.failures_in_a_row = 0
        self.backoff.reset()
        if self.online and not self.sending_disabled:
            sent_all = self._drain_until(deadline)
            if sent_all and not self.forked_child:
                patched = self._patch_until(status, deadline)
        if self.online:
            self.complete = sent_all and not self.set_aside and (patched or self.forked_child)
        else:
            self.complete = self.spool_ok
        self.spool.close(remove=self.online and self.complete)
        if self.api is not None:
            self.api.transport.close()
        if self.pending and self.online:
            lost = sum(r.n_points for r in self.pending if r.segment is None)
            logger.warning("losslens: run %s finished with %d batches not sent; those spooled "
                           "are in %s (`losslens sync` uploads them)%s", run.id,
                           len(self.pending), self.spool.dir,
                           f"; {lost} points held in memory are lost" if lost else "")
        run._flush_reached(None)

    def _give_up(self, deadline: float) -> bool:
        if self.aborted.is_set() or time.monotonic() >= deadline:
            return True
        in_memory = any(r.segment is None for r in self.pending)
        return self.failures_in_a_row >= self.settings.finish_attempts and not in_memory

    def _pause(self, deadline: float) -> None:
        delay = min(self.next_try, deadline) - time.monotonic()
        if delay > 0:
            self.aborted.wait(delay)

    def _drain_until(self, deadline: float) -> bool:
        reported = False
        while not self.sending_disabled:
            if not self.pending and self.carry_dropped and not reported:
                reported = True  # points lost while sending (refused, unreadable): say so
                self._form((), [], 0, closing=True)
            if not self.pending:
                break
            if self._give_up(deadline):
                return False
            self._pause(deadline)
            self._send_pending(deadline, deadline)
        if not self.run_put and not self.sending_disabled:  # a run with no points at all
            while not self._put_run(deadline - time.monotonic()):
                if self.sending_disabled or self._give_up(deadline):
                    return False
                self._pause(deadline)
        return not self.pending and not self.sending_disabled

    def _patch_until(self, status: str, deadline: float) -> bool:
        while True:
            out = self.api.patch_status(self.run.id, status, deadline - time.monotonic())
            if out.kind == _api.MISSING:
                out = self.api.put_run(self.run.id, self.run._meta(), status,
                                       deadline - time.monotonic())
            if out.ok:
                return True
            if out.kind != _api.RETRY:
                logger.error("losslens: cannot set the status of run %s (%s)", self.run.id,
                             out.describe())
                return False
            self._failed(out)
            if self._give_up(deadline):
                return False
            self._pause(deadline)

