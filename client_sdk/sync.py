"""Upload spooled runs: ``client_sdk.sync_spool()``, behind ``losslens sync [PATH]``.

Each run found is created (``PUT``) with its final status (``crashed`` when its process died
while running), then every record not yet acknowledged is sent with its original batch id (so
the server recognises a batch it already has), acknowledged in the spool, and a run whose
records are all on the server has its spool directory removed. A run directory that a live
process is writing (its lock is held) is skipped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from . import _api
from ._api import FINAL_STATUSES, Api, Backoff
from ._settings import Settings
from ._spool import (
    ACK_SUFFIX,
    LOCK_FILE,
    META_FILE,
    DirLock,
    Record,
    append_ack,
    remove_file,
    remove_segment,
    scan_run_dir,
)
from ._transport import HTTPTransport, Transport

ProgressCallback = Callable[[int, int], None]


@dataclass
class SyncResult:
    """What :func:`sync_spool` did."""

    runs: int = 0  #: runs whose spool is now entirely on the server (their directory removed)
    batches: int = 0  #: batches sent now
    points: int = 0  #: points in those batches
    skipped: int = 0  #: batches already acknowledged earlier, not sent again
    failures: int = 0  #: batches or runs that could not be sent (left in the spool)
    busy: int = 0  #: run directories skipped because a live process writes them
    errors: list[str] = field(default_factory=list)  #: one line per problem

    @property
    def ok(self) -> bool:
        """True when nothing failed (busy runs are not failures: sync them later)."""
        return self.failures == 0

    @property
    def failed(self) -> int:
        return self.failures

    def summary(self) -> str:
        """One line for humans, e.g. ``synced 2 runs: 14 batches, 740 points sent, ...``."""
        text = (f"synced {self.runs} runs: {self.batches} batches, {self.points} points sent, "
                f"{self.skipped} batches already on the server, {self.failures} failures")
        if self.busy:
            text += f", {self.busy} runs skipped (in use by a live process)"
        return "\n".join([text, *self.errors])


class _Abort(Exception):
    """Stop the whole sync (bad API key, server unreachable)."""


def find_run_dirs(path: str) -> list[str]:
    """``path`` itself when it is a run directory, else its subdirectories holding a run."""
    if os.path.isfile(os.path.join(path, META_FILE)):
        return [path]
    try:
        names = sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [os.path.join(path, n) for n in names
            if os.path.isfile(os.path.join(path, n, META_FILE))]


def sync_spool(
    path: str | None = None,
    url: str | None = None,
    progress: ProgressCallback | None = None,
    *,
    api_key: str | None = None,
    transport: Transport | None = None,
    retries: int = 5,
) -> SyncResult:
    """Upload every spooled run under ``path`` (a run directory or a spool root; default
    ``$LOSSLENS_DIR`` or ``~/.losslens/spool``) to ``url`` (default ``$LOSSLENS_URL``, else
    the URL the run was logged to). ``progress(sent_batches, total_batches)`` is called at
    the start and after each batch. Network errors are retried ``retries`` times with backoff,
    then the sync stops; what was not sent stays in the spool for the next try."""
    settings = Settings.from_env()
    root = path or settings.spool_root
    env_url = os.environ.get("LOSSLENS_URL") or None
    key = api_key or settings.api_key
    result = SyncResult()
    plan: list[tuple[str, DirLock, dict | None, list]] = []
    for run_dir in find_run_dirs(root):
        lock = DirLock(run_dir)
        try:
            locked = lock.acquire()
        except OSError as exc:
            result.failures += 1
            result.errors.append(f"{run_dir}: {exc}")
            continue
        if not locked:
            result.busy += 1
            continue
        meta, segments = scan_run_dir(run_dir)
        plan.append((run_dir, lock, meta, segments))
    total = sum(len([r for r in recs if r.offset not in acks])
                for _d, _l, _m, segs in plan for _p, recs, acks in segs)
    result.skipped = sum(len([r for r in recs if r.offset in acks])
                         for _d, _l, _m, segs in plan for _p, recs, acks in segs)
    apis: dict[str, Api] = {}
    state = {"sent": 0}
    if progress is not None:
        progress(0, total)
    aborted = False
    try:
        for run_dir, _lock, meta, segments in plan:
            if aborted:
                result.failures += 1
                continue
            target = url or env_url or (meta or {}).get("url") or settings.url
            api = apis.get(target)
            if api is None:
                api = apis[target] = Api(transport or HTTPTransport(target), key,
                                         settings.request_timeout)
            try:
                _sync_run(run_dir, meta, segments, api, settings, retries, result, progress,
                          total, state)
            except _Abort as exc:
                aborted = True
                result.failures += 1
                result.errors.append(f"{os.path.basename(run_dir)}: {exc}")
    finally:
        for _d, lock, _m, _s in plan:
            lock.release()
        for api in apis.values():
            api.transport.close()
    return result


def _call(fn, api: Api, settings: Settings, retries: int) -> _api.Outcome:
    backoff = Backoff(settings.backoff_base, min(settings.backoff_max, 8.0))
    out = fn()
    for _ in range(retries):
        if out.kind != _api.RETRY:
            break
        time.sleep(backoff.next_delay(out.retry_after))
        out = fn()
    if out.kind == _api.UNAUTHORIZED:
        raise _Abort(f"the server refused the API key ({out.describe()})")
    if out.kind == _api.RETRY:
        raise _Abort(f"cannot reach the server ({out.describe()})")
    return out


def _sync_run(run_dir: str, meta: dict | None, segments: list, api: Api, settings: Settings,
              retries: int, result: SyncResult, progress: ProgressCallback | None,
              total: int, state: dict) -> None:
    name = os.path.basename(run_dir.rstrip("/"))
    if meta is None or not meta.get("project"):
        result.failures += 1
        result.errors.append(f"{name}: no readable run.json; left in place")
        return
    run_id = str(meta.get("run_id") or name)
    status = meta.get("status") if meta.get("status") in FINAL_STATUSES else "crashed"
    out = _call(lambda: api.put_run(run_id, meta, status), api, settings, retries)
    if not out.ok:
        result.failures += 1
        result.errors.append(f"{name}: the server refused the run ({out.describe()})")
        return
    failed = 0
    for seg_path, records, acks in segments:
        seg_failed = 0
        for rec in records:
            if rec.offset in acks:
                continue
            if _send(run_id, meta, status, rec, api, settings, retries, result, name):
                append_ack(seg_path, rec.offset)
                state["sent"] += 1
                if progress is not None:
                    progress(state["sent"], total)
            else:
                seg_failed += 1
        if seg_failed == 0:
            remove_segment(seg_path)
        failed += seg_failed
    if state["sent"]:
        # The server revives a crashed run that sends points again (it was only silent):
        # state the final status once more, after the points.
        _call(lambda: api.patch_status(run_id, status), api, settings, retries)
    if failed == 0:
        for leftover in (META_FILE, LOCK_FILE):
            remove_file(os.path.join(run_dir, leftover))
        for n in os.listdir(run_dir):
            if n.endswith(ACK_SUFFIX) or n.endswith(".tmp"):
                remove_file(os.path.join(run_dir, n))
        try:
            os.rmdir(run_dir)
        except OSError:
            pass
        result.runs += 1


def _send(run_id: str, meta: dict, status: str, rec: Record, api: Api, settings: Settings,
          retries: int, result: SyncResult, name: str) -> bool:
    try:
        rec.body = rec.load_body()
    except OSError as exc:
        result.failures += 1
        result.errors.append(f"{name}: {exc}")
        return False
    try:
        out = _call(lambda: api.send_record(run_id, rec), api, settings, retries)
        if out.kind == _api.MISSING:  # deleted meanwhile: create it again, once
            _call(lambda: api.put_run(run_id, meta, status), api, settings, retries)
            out = _call(lambda: api.send_record(run_id, rec), api, settings, retries)
    finally:
        rec.body = None
    if out.ok:
        result.batches += 1
        result.points += rec.n_points
        return True
    result.failures += 1
    result.errors.append(f"{name}: batch {rec.rid} refused ({out.describe()})")
    return False
