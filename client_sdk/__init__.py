"""Losslens client SDK: stream training metrics to a Losslens server.

::

    import client_sdk

    run = client_sdk.init(project="digits", name="mlp-lr3e-4",
                          config={"lr": 3e-4, "batch_size": 64, "n_classes": 10})
    for step in range(10_000):
        client_sdk.log({"loss": loss.item(), "lr": lr}, step=step)
    client_sdk.finish()  # also at exit; status "failed" after an uncaught exception

``log()`` only validates and queues (microseconds); a daemon thread per run writes each batch
to a write-ahead spool (``~/.losslens/spool/<run id>/``) and posts it, retrying with backoff.
What could not be sent is uploaded later by :func:`sync_spool` (``losslens sync``).

Standard library only; Python 3.9+. Importing it never imports torch, numpy or the server.
Network and disk problems are logged once on the ``client_sdk`` logger, never raised into the
training loop.
"""

from ._default import finish, get_run, init, log, unwatch, watch
from ._exceptions import LosslensError, ServerError, TransportError
from ._run import Run
from ._settings import Settings
from ._transport import HTTPTransport, Response, Transport
from ._version import __version__
from .sync import SyncResult, sync_spool

__all__ = [
    "HTTPTransport",
    "LosslensError",
    "Response",
    "Run",
    "ServerError",
    "Settings",
    "SyncResult",
    "Transport",
    "TransportError",
    "__version__",
    "finish",
    "get_run",
    "init",
    "log",
    "sync_spool",
    "unwatch",
    "watch",
]
