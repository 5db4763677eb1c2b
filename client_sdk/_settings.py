"""Settings of the SDK, read from ``LOSSLENS_*`` environment variables when a run starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8765"
MODES = ("online", "offline")


def default_spool_root() -> str:
    return os.path.join(os.path.expanduser("~"), ".losslens", "spool")


@dataclass(frozen=True)
class Settings:
    """Tunables of one run. ``Settings.from_env()`` reads the environment; tests override fields
    with :func:`dataclasses.replace`."""

    url: str = DEFAULT_URL
    api_key: str | None = None
    mode: str = "online"
    spool_root: str = ""
    #: the most bytes of spool segments on disk (this run's plus the other runs' under the root,
    #: measured once when the run starts); beyond it new points are dropped and counted
    spool_max_bytes: int = 1 << 30
    #: a spool segment is sealed once it holds this many bytes
    segment_max_bytes: int = 8 << 20
    #: a batch carries at most this many points; the sender wakes early once they are queued
    batch_points: int = 20_000
    #: the sender drains the in-memory queue at least this often (seconds)
    flush_interval: float = 0.25
    #: points held in memory (queue + batches that could not be spooled) before dropping
    max_queue_points: int = 1_000_000
    #: seconds one HTTP request may take
    request_timeout: float = 10.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    #: seconds the exit hook spends flushing all runs
    exit_timeout: float = 30.0
    #: while finishing, give up after this many failed attempts in a row (network errors,
    #: 5xx) when everything left is safe in the spool (``losslens sync`` uploads it later)
    finish_attempts: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``LOSSLENS_URL``, ``LOSSLENS_API_KEY``, ``LOSSLENS_MODE``,
        ``LOSSLENS_DIR`` and ``LOSSLENS_SPOOL_MAX_BYTES``. A bad value raises ``ValueError``."""
        env = os.environ if environ is None else environ
        s = cls(spool_root=default_spool_root())
        changes: dict = {}
        if env.get("LOSSLENS_URL"):
            changes["url"] = env["LOSSLENS_URL"]
        if env.get("LOSSLENS_API_KEY"):
            changes["api_key"] = env["LOSSLENS_API_KEY"]
        if env.get("LOSSLENS_MODE"):
            changes["mode"] = env["LOSSLENS_MODE"].strip().lower()
        if env.get("LOSSLENS_DIR"):
            changes["spool_root"] = os.path.expanduser(env["LOSSLENS_DIR"])
        raw = env.get("LOSSLENS_SPOOL_MAX_BYTES")
        if raw:
            try:
                changes["spool_max_bytes"] = int(raw)
            except ValueError:
                raise ValueError(
                    f"LOSSLENS_SPOOL_MAX_BYTES must be an integer number of bytes, got {raw!r}"
                ) from None
        return s.with_overrides(**changes)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the non-``None`` fields of ``changes`` replaced, then checked."""
        changes = {k: v for k, v in changes.items() if v is not None}
        s = replace(self, **changes) if changes else self
        s.check()
        return s

    def check(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'online' or 'offline', got {self.mode!r}")
        check_url(self.url)
        if self.spool_max_bytes < 0:
            raise ValueError("spool_max_bytes must be >= 0")
        if self.batch_points < 1 or self.max_queue_points < 1:
            raise ValueError("batch_points and max_queue_points must be >= 1")


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the server URL must look like http://host:port, got {url!r}")
