"""Test helpers shipped with the SDK: an in-memory transport that records every request and
answers like a Losslens server (runs, idempotent batches, model checks), with failures on
demand::

    from client_sdk.testing import MemoryTransport

    transport = MemoryTransport()
    run = client_sdk.init(project="p", transport=transport)
    run.log({"loss": 0.5})
    run.finish()
    assert transport.series(run.id, "loss") == ([0], [0.5])
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Callable, Union

from ._encode import gunzip_bytes
from ._exceptions import TransportError
from ._transport import Response

__all__ = ["MemoryTransport", "Request", "decode_value"]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode_value(v: Any) -> float:
    """A float64 value as docs/api.md sends it (``"NaN"``, ``"Infinity"``, ``"-Infinity"``)."""
    return _NONFINITE[v] if isinstance(v, str) else float(v)


class Request:
    """One recorded request; ``json`` is the decoded (gunzipped) body."""

    def __init__(self, method: str, path: str, headers: Mapping[str, str],
                 body: bytes | None) -> None:
        self.method = method
        self.path = path
        self.headers = dict(headers)
        self.body = body
        raw = body or b""
        if raw and self.headers.get("Content-Encoding") == "gzip":
            raw = gunzip_bytes(raw)
        self.json: Any = json.loads(raw) if raw else None
        self.time = time.monotonic()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


Answer = Union[Response, Exception]


class MemoryTransport:
    """A transport that plays the server in memory. ``requests`` lists every request;
    ``fail_next(n, status)`` answers the next ``n`` requests with ``status`` (or a network
    error when ``status`` is None); ``down = True`` fails every request with a network error
    until set back; ``handler(request)`` may return a ``Response`` to override the answer."""

    def __init__(self, handler: Callable[[Request], Response | None] | None = None):
        self.handler = handler
        self.requests: list[Request] = []
        self.runs: dict[str, dict] = {}
        self.points: dict[str, dict[str, dict[int, tuple[float, float | None]]]] = {}
        self.batch_ids: dict[str, set] = {}
        self.dropped: dict[str, int] = {}
        self.model_checks: dict[str, list] = {}
        self.diagnoses: dict[str, list] = {}
        self.closed = 0
        self.down = False
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()

    # --------------------------------------------------------------- test controls

    def fail_next(self, n: int = 1, status: int | None = None,
                  retry_after: str | None = None) -> None:
        with self._lock:
            for _ in range(n):
                if status is None:
                    self._answers.append(TransportError("simulated network error"))
                else:
                    headers = {"Retry-After": retry_after} if retry_after else {}
                    body = json.dumps({"detail": f"simulated {status}"}).encode()
                    self._answers.append(Response(status, headers, body))

    def series(self, run_id: str, key: str) -> tuple[list[int], list[float]]:
        """Steps and values stored for ``key``, by step."""
        pts = self.points.get(run_id, {}).get(key, {})
        steps = sorted(pts)
        return steps, [pts[s][0] for s in steps]

    def num_points(self, run_id: str) -> int:
        return sum(len(v) for v in self.points.get(run_id, {}).values())

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    # --------------------------------------------------------------- the transport

    def request(self, method: str, path: str, body: bytes | None,
                headers: Mapping[str, str], timeout: float) -> Response:
        req = Request(method, path, headers, body)
        with self._lock:
            self.requests.append(req)
            if self.down:
                raise TransportError("simulated network error: the server is down")
            answer = self._answers.popleft() if self._answers else None
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
        if self.handler is not None:
            custom = self.handler(req)
            if custom is not None:
                return custom
        with self._lock:
            return self._serve(req)

    def close(self) -> None:
        self.closed += 1

    # --------------------------------------------------------------- the fake server

    def _serve(self, req: Request) -> Response:
        parts = req.path.split("/")  # '', 'api', 'v1', 'runs', id, [sub]
        if len(parts) < 5 or parts[:4] != ["", "api", "v1", "runs"]:
            return _json(404, {"detail": "not found"})
        run_id = parts[4]
        sub = parts[5] if len(parts) > 5 else ""
        run = self.runs.get(run_id)
        if sub == "" and req.method == "PUT":
            created = run is None
            if created and "project" not in req.json:
                return _json(422, {"detail": "project is required"})
            stored = dict(run or {}, **req.json)
            self.runs[run_id] = stored
            return _json(201 if created else 200, dict(stored, id=run_id))
        if run is None:
            return _json(404, {"detail": f"run {run_id} not found"})
        if sub == "" and req.method == "PATCH":
            run.update(req.json)
            return _json(200, dict(run, id=run_id))
        if sub == "points" and req.method == "POST":
            return self._ingest(run_id, req.json)
        if sub == "model-checks" and req.method == "PUT":
            self.model_checks[run_id] = req.json["findings"]
            return _json(200, {"findings": len(req.json["findings"])})
        return _json(405, {"detail": "method not allowed"})

    def _ingest(self, run_id: str, batch: dict) -> Response:
        seen = self.batch_ids.setdefault(run_id, set())
        accepted = sum(len(c["steps"]) for c in batch["points"].values())
        diagnoses = self.diagnoses.get(run_id, [])
        if batch["batch_id"] in seen:
            return _json(200, {"accepted": accepted, "new": 0, "duplicate": True,
                               "diagnoses": diagnoses})
        seen.add(batch["batch_id"])
        self.dropped[run_id] = self.dropped.get(run_id, 0) + int(batch.get("dropped", 0))
        store = self.points.setdefault(run_id, {})
        new = 0
        for key, col in batch["points"].items():
            series = store.setdefault(key, {})
            walls = col.get("wall") or [None] * len(col["steps"])
            for step, value, wall in zip(col["steps"], col["values"], walls):
                new += step not in series
                series[step] = (decode_value(value), wall)
        return _json(200, {"accepted": accepted, "new": new, "duplicate": False,
                           "diagnoses": diagnoses})


def _json(status: int, obj: Any) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(obj).encode())
