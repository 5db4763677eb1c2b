"""Server settings, read from ``LOSSLENS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where the default SQLite database lives: ``~/.losslens``."""
    return Path.home() / ".losslens"


class Settings(BaseSettings):
    """All server configuration. Built explicitly (``Settings()``), never at import time."""

    model_config = SettingsConfigDict(env_prefix="LOSSLENS_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    broker_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8765
    # Request limits: a body over max_body_bytes is refused before it is read.
    max_body_bytes: int = 32 * 1024 * 1024
    max_decompressed_bytes: int = 256 * 1024 * 1024
    max_points_per_batch: int = 2_000_000
    max_keys_per_batch: int = 10_000
    # Chunks below this many points are merged by compaction (about 10k points per chunk).
    compact_target_points: int = 10_000
    diagnose_interval: float = 2.0
    # A running run silent (no points, no heartbeat) for this long is marked crashed.
    heartbeat_timeout: float = 300.0
    # API keys: off by default (then `losslens serve` binds only 127.0.0.1 unless told
    # --insecure-no-auth); on, every request needs a project's key.
    auth: bool = False
    # Mark the dashboard's cookie Secure (set when served over HTTPS behind a proxy).
    cookie_secure: bool = False
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v and not v.startswith(("sqlite", "postgresql")):
            raise ValueError("LOSSLENS_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return v

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/losslens.db``.

        ``postgresql://`` is mapped to the psycopg 3 driver.
        """
        url = self.database_url or f"sqlite:///{self.data_dir / 'losslens.db'}"
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
