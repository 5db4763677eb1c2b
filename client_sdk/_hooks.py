"""Process-wide hooks, installed when the first run starts (never at import):

- ``atexit``: finish every live run (status ``failed`` after an uncaught exception);
- ``sys.excepthook`` (chained): an uncaught exception marks the live runs failed;
- ``os.register_at_fork``: in a forked child, fresh locks and a new sender on first use
  (the parent's sender thread does not exist in the child).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._run import Run

_lock = threading.Lock()
_live: dict[int, Run] = {}
_installed = False
_prev_excepthook = None


def fork_lock() -> threading.Lock:
    """The module lock (replaced in a forked child, so never held by a ghost thread)."""
    return _lock


def register(run: Run) -> None:
    global _installed
    with _lock:
        _live[id(run)] = run
        if not _installed:
            _install()
            _installed = True


def unregister(run: Run) -> None:
    with _lock:
        _live.pop(id(run), None)


def live_runs() -> list[Run]:
    with _lock:
        return list(_live.values())


def _install() -> None:
    global _prev_excepthook
    atexit.register(_at_exit)
    _prev_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _excepthook(exc_type, exc, tb) -> None:
    for run in list(_live.values()):
        run._exit_status = "failed"
    hook = _prev_excepthook or sys.__excepthook__
    hook(exc_type, exc, tb)


def finish_all(timeout: float) -> None:
    """Finish every live run, all within ``timeout`` seconds together."""
    runs = live_runs()
    deadline = time.monotonic() + timeout
    begun = [r for r in runs if r._begin_finish(r._exit_status, deadline)]
    for run in begun:
        run._wait_finish()


def _at_exit() -> None:
    runs = live_runs()
    if runs:
        finish_all(min(r.settings.exit_timeout for r in runs))


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    from . import _default

    _default.after_fork_in_child()
    for run in list(_live.values()):
        run._after_fork_in_child()
