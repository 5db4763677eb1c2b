"""The module functions (``client_sdk.init``, ``log``, ``finish``, ...) and the default run
they proxy to, created lazily under a lock."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from ._run import Run
from ._settings import Settings
from ._transport import Transport

logger = logging.getLogger("client_sdk")

_lock = threading.Lock()
_run: Run | None = None


def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    url: str | None = None,
    mode: str | None = None,
    run_id: str | None = None,
    spool_dir: str | None = None,
    api_key: str | None = None,
    on_diagnosis: Callable[[Run, dict], None] | None = None,
    *,
    transport: Transport | None = None,
    settings: Settings | None = None,
) -> Run:
    """Start a run and make it the default of :func:`log`, :func:`finish` and :func:`watch`.

    ``project`` names the project (default ``$LOSSLENS_PROJECT`` or ``"default"``); ``name``
    the run (the server's default: the first 8 characters of the id); ``config`` the
    hyper-parameters (a JSON-able dict: ``lr``, ``batch_size``, ``n_classes``, ...); ``tags``
    a list of strings. ``url`` (``$LOSSLENS_URL``, default ``http://127.0.0.1:8765``),
    ``api_key`` (``$LOSSLENS_API_KEY``, sent as ``Authorization: Bearer``), ``mode``
    (``"online"`` or ``"offline"``: only spool, upload later with ``losslens sync``;
    ``$LOSSLENS_MODE``), ``spool_dir`` (the spool root, ``$LOSSLENS_DIR``, default
    ``~/.losslens/spool``). ``run_id`` resumes a run (a UUID; by default a new uuid4), and
    resends what an earlier process left in its spool. ``on_diagnosis(run, diagnosis)`` is
    called from the sender thread for each newly active diagnosis the server reports.
    ``transport`` replaces HTTP (see :mod:`client_sdk.testing`).

    A previous default run still running is finished first. Never blocks on the network.
    """
    global _run
    with _lock:
        previous, _run = _run, None
    if previous is not None and not previous.finished:
        previous.finish()
    run = Run(project, name=name, config=config, tags=tags, url=url, mode=mode, run_id=run_id,
              spool_dir=spool_dir, api_key=api_key, on_diagnosis=on_diagnosis,
              transport=transport, settings=settings)
    with _lock:
        _run = run
    return run


def get_run() -> Run | None:
    """The default run, or None before :func:`init` / after :func:`finish`."""
    return _run


def _default_run() -> Run:
    global _run
    with _lock:
        if _run is None:
            project = os.environ.get("LOSSLENS_PROJECT") or "default"
            logger.warning("losslens: log() before init(); starting a run in project %r",
                           project)
            _run = Run(project)
        return _run


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """Log ``{key: number}`` at ``step`` to the default run; see :meth:`Run.log`.

    Returns in microseconds, never blocks, never raises on network or disk trouble; raises
    ``TypeError``/``ValueError`` naming the key for a bad key or value."""
    run = _run
    if run is None:
        run = _default_run()
    run.log(data, step)


def finish(status: str = "finished", timeout: float = 30.0) -> bool:
    """Finish the default run (see :meth:`Run.finish`); True if there was nothing to do."""
    global _run
    with _lock:
        run, _run = _run, None
    if run is None:
        return True
    return run.finish(status=status, timeout=timeout)


def watch(model: Any, optimizer: Any = None, every: int = 10, **kwargs: Any) -> Any:
    """Watch a PyTorch model with the default run; see :meth:`Run.watch`."""
    run = _run if _run is not None else _default_run()
    return run.watch(model, optimizer=optimizer, every=every, **kwargs)


def unwatch(model: Any = None) -> Any:
    """Remove the hooks :func:`watch` installed, with the default run."""
    run = _run
    if run is None:
        return None
    return run.unwatch(model)


def after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
