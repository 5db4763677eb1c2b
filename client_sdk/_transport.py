"""Transports: how a request reaches the server. ``HTTPTransport`` keeps one stdlib
``http.client`` connection alive; tests inject ``client_sdk.testing.MemoryTransport``."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ._exceptions import TransportError
from ._settings import check_url


class Response:
    """A server answer: status, lower-cased headers, raw body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Mapping[str, str] | None = None,
                 body: bytes = b"") -> None:
        self.status = status
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        self.body = body

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError):
            return None

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body[:80]!r})"


class Transport(Protocol):
    """What the sender needs from a transport; one thread uses it at a time."""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> Response:
        """Send one request to ``path`` (e.g. ``/api/v1/runs/<id>``) and return the answer;
        raise :class:`~client_sdk.TransportError` when no answer came (network, timeout)."""
        ...

    def close(self) -> None:
        """Drop any open connection."""
        ...


class HTTPTransport:
    """HTTP/1.1 to ``url`` (``http://host:port[/prefix]`` or https) over one keep-alive
    connection, reopened after any error."""

    def __init__(self, url: str) -> None:
        check_url(url)
        parts = urlsplit(url)
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> Response:
        timeout = max(0.05, timeout)
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect(timeout)
        elif conn.sock is not None:
            conn.sock.settimeout(timeout)
        else:
            conn.timeout = timeout
        try:
            conn.request(method, self._prefix + path, body=body, headers=dict(headers))
            resp = conn.getresponse()
            data = resp.read()
            answer = Response(resp.status, dict(resp.getheaders()), data)
            if resp.will_close:
                self.close()
            return answer
        except (OSError, http.client.HTTPException, socket.timeout) as exc:
            self.close()
            raise TransportError(f"{method} {self.url}{path}: {exc or type(exc).__name__}") \
                from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def after_fork_in_child(self) -> None:
        """Forget the parent's socket without closing it under the parent's feet."""
        self._conn = None
