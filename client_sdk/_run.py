"""``Run``: one training run, its in-memory queue and its sender thread."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from . import _hooks
from ._encode import dumps_json, json_safe
from ._sender import Sender
from ._settings import Settings, default_spool_root
from ._transport import Transport
from ._validate import MAX_STEP, check_keys, check_step, coerce_values

logger = logging.getLogger("client_sdk")

FINAL_STATUSES = ("finished", "failed", "crashed")
_NUMBER_TYPES = frozenset((float, int))
_time = time.time

DiagnosisCallback = Callable[["Run", dict[str, Any]], None]


class Run:
    """One training run. Create it with :func:`client_sdk.init` (which also makes it the
    default for the module functions) or directly, for several runs in one process::

        with Run(project="digits", config={"lr": 3e-4}) as run:
            run.log({"loss": 0.41}, step=0)

    Leaving the ``with`` block finishes the run (status ``failed`` on an exception).

    Attributes: ``id`` (a UUID string chosen here), ``project``, ``name``, ``config``, ``tags``,
    ``url``, ``mode``, ``spool_path`` (``<spool root>/<id>``), ``diagnoses`` (the latest active
    diagnoses the server sent), ``on_diagnosis``.
    """

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        url: str | None = None,
        mode: str | None = None,
        run_id: str | None = None,
        spool_dir: str | None = None,
        api_key: str | None = None,
        on_diagnosis: DiagnosisCallback | None = None,
        *,
        transport: Transport | None = None,
        settings: Settings | None = None,
    ) -> None:
        base = settings if settings is not None else Settings.from_env()
        s = base.with_overrides(url=url, mode=mode, api_key=api_key, spool_root=spool_dir)
        if not s.spool_root:
            s = s.with_overrides(spool_root=default_spool_root())
        self.settings = s
        self._max_queued = s.max_queue_points
        self._batch_points = s.batch_points
        self.id = _check_run_id(run_id) if run_id is not None else str(uuid.uuid4())
        if project is None:
            project = "default"
        if not isinstance(project, str) or not project.strip():
            raise ValueError(f"project must be a non-empty string, got {project!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"config must be a dict, not {type(config).__name__}")
        if tags is not None and (isinstance(tags, str)
                                 or not all(isinstance(t, str) for t in tags)):
            raise TypeError("tags must be a list of strings")
        self.project = project
        self.name = name
        self.config: dict[str, Any] = json_safe(dict(config)) if config else {}
        self.tags: list[str] = list(tags) if tags else []
        self.url = s.url
        self.mode = s.mode
        self.spool_path = f"{s.spool_root.rstrip('/')}/{self.id}"
        self.on_diagnosis = on_diagnosis
        self.diagnoses: list[dict[str, Any]] = []
        self.created_at = _time()
        self._transport = transport
        self._exit_status = "finished"
        self._final_status: str | None = None
        self._deadline = 0.0
        self._lost = 0  # points dropped after they left the queue (spool full, rejected)
        self._init_queue()
        self._pid = os.getpid()
        self._closed = False
        self._needs_sender = False
        self._sender = Sender(self, transport)
        self._sender.start()
        _hooks.register(self)

    def _init_queue(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the sender waits here
        self._flushed = threading.Condition(self._lock)  # flush() callers wait here
        self._queue: deque = deque()
        self._queued = 0
        self._dropped = 0  # dropped since the last batch was formed
        self._dropped_total = 0
        self._controls: list[bytes] = []
        self._next_step = 0
        self._known: set = set()
        self._flush_req = 0  # flush() calls so far
        self._flush_seen = 0  # of which the sender has started on
        self._flush_done = 0  # and completed

    # ------------------------------------------------------------------ logging

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Queue ``data`` (``{key: number}``) at ``step`` and return at once.

        ``step`` is an int in ``[0, 2**63)``; by default one more than the previous default
        step, and never below the last explicit step + 1. Values are ``float``/``int`` or
        anything with ``__float__`` (numpy scalars, 0-d tensors); NaN and infinities are kept.
        Raises ``TypeError``/``ValueError`` naming the key for a bad key or value (a bool, a
        string, ``None``, a non-scalar). Never blocks and never raises on network or disk
        problems; when the in-memory queue is full, the points are dropped and counted.
        """
        if self._needs_sender:
            self._restart_after_fork()
        if type(data) is dict:
            data = data.copy()
        else:
            data = _as_dict(data)
        if not self._known.issuperset(data):
            check_keys(data, self._known)
        if not _NUMBER_TYPES.issuperset(map(type, data.values())):
            data = coerce_values(data)
        if step is not None and (type(step) is not int or not 0 <= step < MAX_STEP):
            step = check_step(step)
        n = len(data)
        if not n:
            return
        now = _time()
        with self._lock:
            if self._closed:
                return self._log_after_finish()
            if step is None:
                step = self._next_step
                self._next_step = step + 1
            elif step >= self._next_step:
                self._next_step = step + 1
            if self._queued + n > self._max_queued:
                self._dropped += n
                self._dropped_total += n
                return
            self._queue.append((step, now, data))
            self._queued += n
            if self._queued >= self._batch_points:
                self._wake.notify()

    def _log_after_finish(self) -> None:
        if not getattr(self, "_warned_closed", False):
            self._warned_closed = True
            logger.warning("losslens: log() after finish() of run %s is ignored", self.id)

    def report_model_checks(self, findings: list[dict[str, Any]]) -> None:
        """Queue ``PUT /runs/{id}/model-checks`` with these findings (each a dict with
        ``kind``, ``severity``, ``subject``, ``title``, ``recommendation``, ``evidence``);
        they replace the run's earlier model-check findings. Sent (and spooled) by the sender
        thread."""
        if isinstance(findings, (str, bytes)) or not all(isinstance(f, Mapping)
                                                         for f in findings):
            raise TypeError("findings must be a list of dicts")
        body = dumps_json({"findings": json_safe([dict(f) for f in findings])})
        if self._needs_sender:
            self._restart_after_fork()
        with self._lock:
            if self._closed:
                return self._log_after_finish()
            self._controls.append(body)
            self._wake.notify()

    # ------------------------------------------------------------------ flush and finish

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything logged so far is on the server (offline: in the spool), at
        most ``timeout`` seconds. Returns True when it is."""
        self._check_pid()
        if self._needs_sender:
            self._restart_after_fork()
        if self._in_sender_thread():
            return False
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flush_req += 1
            target = self._flush_req
            self._wake.notify()
            while self._flush_done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._sender.alive():
                    return self._flush_done >= target
                self._flushed.wait(min(remaining, 0.5))
        return True

    def finish(self, status: str = "finished", timeout: float = 30.0) -> bool:
        """Flush (at most ``timeout`` seconds, never hanging), set the run's status
        (``finished``, ``failed`` or ``crashed``) and stop the sender. Points that could not
        be sent stay in the spool for ``losslens sync``. Returns True when everything reached
        the server (offline: the spool). Calling it again does nothing."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, got {status!r}")
        self._check_pid()
        began = self._begin_finish(status, time.monotonic() + timeout)
        if self._in_sender_thread():  # e.g. from on_diagnosis: the sender finishes after it
            return False
        if not began:
            return self._sender.done.wait(timeout) and self._sender.complete
        return self._wait_finish()

    def _in_sender_thread(self) -> bool:
        return threading.current_thread() is self._sender.thread

    def _begin_finish(self, status: str, deadline: float) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            self._final_status = status
            self._deadline = deadline
            self._wake.notify()
        return True

    def _wait_finish(self) -> bool:
        self._unwatch_all()
        sender = self._sender
        if self._needs_sender:  # a forked child that logged nothing: nothing to send
            _hooks.unregister(self)
            return True
        if not sender.alive():
            if not sender.done.is_set():
                sender.main()  # no thread (forked child, interpreter shutdown): run it here
        else:
            sender.done.wait(max(0.0, self._deadline - time.monotonic()))
        if not sender.done.is_set():
            sender.aborted.set()
            logger.warning("losslens: finish() of run %s timed out; what was not sent is in %s",
                           self.id, self.spool_path)
        _hooks.unregister(self)
        return sender.done.is_set() and sender.complete

    def _unwatch_all(self) -> None:
        watcher = sys.modules.get("client_sdk._torch_watch")  # only if watch() was used
        if watcher is not None:
            try:
                watcher.unwatch(self, None)
            except Exception:  # noqa: BLE001 - finishing must go on
                logger.exception("losslens: unwatch() failed while finishing run %s", self.id)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(status="failed" if exc_type is not None else "finished")

    # ------------------------------------------------------------------ torch hooks

    def watch(self, model: Any, optimizer: Any = None, every: int = 10, **kwargs: Any) -> Any:
        """Log gradient, weight, activation and update statistics of a PyTorch ``model``
        every ``every`` steps (see docs/signals.md). Imports torch only when called."""
        from . import _torch_watch

        return _torch_watch.watch(self, model, optimizer=optimizer, every=every, **kwargs)

    def unwatch(self, model: Any = None) -> Any:
        """Remove the hooks :meth:`watch` installed (on ``model``, or on every model)."""
        from . import _torch_watch

        return _torch_watch.unwatch(self, model)

    # ------------------------------------------------------------------ state

    @property
    def dropped(self) -> int:
        """Points dropped so far: queue full, spool full, or rejected by the server."""
        return self._dropped_total + self._lost

    @property
    def status(self) -> str:
        return self._final_status or "running"

    @property
    def finished(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<Run {self.id} project={self.project!r} name={self.name!r} {self.status}>"

    # ------------------------------------------------------------------ for the sender

    def _meta(self) -> dict[str, Any]:
        return {
            "version": 1, "run_id": self.id, "project": self.project, "name": self.name,
            "config": self.config, "tags": self.tags, "url": self.url, "mode": self.mode,
            "status": self.status, "created_at": self.created_at,
        }

    def _take(self, timeout: float):
        with self._lock:
            if not (self._queued >= self._batch_points or self._controls
                    or self._closed or self._flush_req > self._flush_seen):
                self._wake.wait(timeout)
            entries: Any = ()
            if self._queue:  # hand over the whole deque; log() appends to a new one
                entries, self._queue = self._queue, deque()
                self._queued = 0
            controls, self._controls = self._controls, []
            dropped, self._dropped = self._dropped, 0
            self._flush_seen = self._flush_req
            return entries, controls, dropped, self._flush_req, self._closed

    def _flush_reached(self, gen: int | None) -> None:
        with self._lock:
            self._flush_done = (1 << 62) if gen is None else max(self._flush_done, gen)
            self._flushed.notify_all()

    def _count_lost(self, n: int) -> None:
        self._lost += n

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, an empty queue (the parent sends what it logged),
        and a new sender started on the next ``log()``."""
        self._pid = os.getpid()
        known, next_step = self._known, self._next_step
        self._init_queue()
        self._known, self._next_step = known, next_step
        self._sender.after_fork_in_child()
        self._needs_sender = not self._closed

    def _check_pid(self) -> None:
        """A fork that bypassed ``os.register_at_fork`` (not ``os.fork``) is caught here."""
        if self._pid != os.getpid():
            self._after_fork_in_child()

    def _restart_after_fork(self) -> None:
        with _hooks.fork_lock():
            if self._needs_sender:
                self._sender = Sender(self, self._transport, forked_child=True)
                self._sender.start()
                self._needs_sender = False


def _as_dict(data: Any) -> dict:
    if not isinstance(data, Mapping):
        raise TypeError(f"log() takes a dict of {{key: number}}, not {type(data).__name__}")
    return dict(data)


def _check_run_id(run_id: Any) -> str:
    try:
        return str(uuid.UUID(str(run_id)))
    except ValueError:
        raise ValueError(f"run_id must be a UUID, got {run_id!r}") from None
