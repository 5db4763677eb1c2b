"""The REST calls of docs/api.md and how their answers are classified (retry, give up, ...).

Shared by the live sender thread and ``sync_spool``.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ._encode import dumps_json, json_safe
from ._exceptions import TransportError
from ._spool import KIND_MODEL_CHECKS, KIND_POINTS, Record
from ._transport import Response, Transport
from ._version import __version__

OK = "ok"
RETRY = "retry"  # network error, 408, 429, 5xx: try again later
MISSING = "missing"  # 404: the run does not exist (yet)
REJECTED = "rejected"  # other 4xx: this request will never succeed
UNAUTHORIZED = "unauthorized"  # 401/403: no request will succeed with this key
FINAL_STATUSES = ("finished", "failed", "crashed")
RETRY_AFTER_MAX = 600.0  # seconds: a longer Retry-After is taken as this

#: record kind -> (method, path suffix under /runs/{id}, body is gzipped)
RECORD_ROUTES = {
    KIND_POINTS: ("POST", "/points", True),
    KIND_MODEL_CHECKS: ("PUT", "/model-checks", False),
}


class Outcome:
    """What became of one request."""

    __slots__ = ("kind", "status", "detail", "retry_after", "data", "network")

    def __init__(self, kind: str, status: int | None = None, detail: str = "",
                 retry_after: float | None = None, data: Any = None,
                 network: bool = False) -> None:
        self.kind = kind
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.data = data
        self.network = network

    @property
    def ok(self) -> bool:
        return self.kind == OK

    def describe(self) -> str:
        if self.status is None:
            return self.detail
        return f"HTTP {self.status}: {self.detail}" if self.detail else f"HTTP {self.status}"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def classify(resp: Response) -> Outcome:
    status = resp.status
    data = resp.json()
    if 200 <= status < 300:
        return Outcome(OK, status, data=data)
    detail = ""
    if isinstance(data, dict) and "detail" in data:
        detail = str(data["detail"])[:500]
    elif resp.body:
        detail = resp.body[:200].decode("utf-8", "replace")
    retry_after = parse_retry_after(resp.headers.get("retry-after"))
    if status in (408, 429) or status >= 500:
        return Outcome(RETRY, status, detail, retry_after)
    if status == 404:
        return Outcome(MISSING, status, detail)
    if status in (401, 403):
        return Outcome(UNAUTHORIZED, status, detail)
    return Outcome(REJECTED, status, detail)


def run_body(meta: Mapping[str, Any], status: str | None = None) -> bytes:
    """The ``PUT /runs/{id}`` body for a run described by its ``run.json``."""
    body: dict[str, Any] = {"project": meta["project"]}
    for field in ("name", "config", "tags"):
        if meta.get(field) is not None:
            body[field] = json_safe(meta[field])
    body["status"] = status or meta.get("status") or "running"
    return dumps_json(body)


class Api:
    """The REST calls one run (or ``sync_spool``) makes, over one transport."""

    def __init__(self, transport: Transport, api_key: str | None, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"losslens-client/{__version__}",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._gz_headers = dict(self._headers, **{"Content-Encoding": "gzip"})

    def call(self, method: str, path: str, body: bytes | None, gzipped: bool = False,
             timeout: float | None = None) -> Outcome:
        t = self.timeout if timeout is None else min(self.timeout, timeout)
        headers = self._gz_headers if gzipped else self._headers
        try:
            resp = self.transport.request(method, path, body, headers, t)
        except TransportError as exc:
            return Outcome(RETRY, None, str(exc), network=True)
        return classify(resp)

    @staticmethod
    def run_path(run_id: str) -> str:
        return "/api/v1/runs/" + quote(run_id, safe="")

    def put_run(self, run_id: str, meta: Mapping[str, Any], status: str | None = None,
                timeout: float | None = None) -> Outcome:
        return self.call("PUT", self.run_path(run_id), run_body(meta, status), timeout=timeout)

    def patch_status(self, run_id: str, status: str, timeout: float | None = None) -> Outcome:
        return self.call("PATCH", self.run_path(run_id), dumps_json({"status": status}),
                         timeout=timeout)

    def heartbeat(self, run_id: str, timeout: float | None = None) -> Outcome:
        return self.call("POST", self.run_path(run_id) + "/heartbeat", None, timeout=timeout)

    def send_record(self, run_id: str, record: Record,
                    timeout: float | None = None) -> Outcome:
        method, suffix, gzipped = RECORD_ROUTES[record.kind]
        return self.call(method, self.run_path(run_id) + suffix, record.load_body(), gzipped,
                         timeout)


class Backoff:
    """Exponential backoff with jitter; a ``Retry-After`` from the server wins when longer."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self, retry_after: float | None = None) -> float:
        self.failures += 1
        delay = min(self.cap, self.base * (2 ** min(self.failures - 1, 30)))
        delay = delay / 2 + self._rng.uniform(0, delay / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
        return delay

    def reset(self) -> None:
        self.failures = 0
