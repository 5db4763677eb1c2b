"""The exceptions of the SDK.

``log()`` raises only programming errors (``TypeError``/``ValueError`` naming the key); network
and disk problems are logged once on the ``client_sdk`` logger and never raised into training.

::

    LosslensError
    ├── TransportError       no answer from the server (connection, timeout)
    └── ServerError          the server answered with an error the SDK cannot retry
"""

from __future__ import annotations


class LosslensError(Exception):
    """Base class of the errors the SDK raises or reports."""


class TransportError(LosslensError):
    """A request got no answer: connection refused or reset, timeout, DNS failure."""


class ServerError(LosslensError):
    """The server refused a request (a 4xx other than 408/429, or a 5xx after retries)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
