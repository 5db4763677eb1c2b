"""Runs whose training process died: ``running`` with no heartbeat for a while become ``crashed``.

Every batch of points and every ``POST /runs/{id}/heartbeat`` renews a run's heartbeat; the
SDK sends one when it has had nothing else to send for a while. A crashed run that sends
again is ``running`` again.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from ..storage.models import Run, utcnow

log = logging.getLogger("losslens.reaper")


def mark_crashed(session: Session, timeout_s: float) -> int:
    """Mark running runs silent for more than ``timeout_s`` as crashed; returns how many."""
    now = utcnow()
    result = session.execute(
        update(Run)
        .where(Run.status == "running", Run.heartbeat_at < now - timedelta(seconds=timeout_s))
        .values(status="crashed", finished_at=now, updated_at=now)
    )
    return result.rowcount or 0


class Reaper:
    """A daemon thread that calls :func:`mark_crashed` every ``timeout_s / 4`` seconds.

    Idempotent: several server processes may each run one.
    """

    def __init__(self, maker: sessionmaker[Session], timeout_s: float):
        self._maker = maker
        self._timeout = timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="losslens-reaper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(max(1.0, self._timeout / 4)):
            try:
                with self._maker.begin() as session:
                    n = mark_crashed(session, self._timeout)
                if n:
                    log.info("%d run(s) stopped sending heartbeats: marked crashed", n)
            except Exception as exc:  # the database may be down for a while: try again later
                log.warning("could not check heartbeats: %s", str(exc).splitlines()[0][:200])

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
