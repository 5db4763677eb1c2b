"""Request and response bodies of the runs API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..validation import bad_text_reason

Status = Literal["running", "finished", "failed", "crashed"]
MAX_NAME = 250
MAX_TAG = 100
MAX_TAGS = 100
MAX_CONFIG_BYTES = 256 * 1024


def _check_text(value: str, what: str, max_length: int) -> str:
    reason = bad_text_reason(value, max_length)
    if reason:
        raise ValueError(f"{what} {reason}")
    return value


def _check_tags(tags: list[str] | None) -> list[str] | None:
    if tags is None:
        return None
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{len(tags)} tags; the limit is {MAX_TAGS}")
    for t in tags:
        _check_text(t, "a tag", MAX_TAG)
    return list(dict.fromkeys(tags))  # keep order, drop repeats


class RunUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str | None = Field(None, description="Required when the run is created.")
    name: str | None = None
    config: dict[str, Any] | None = None
    tags: list[str] | None = None
    status: Status | None = None

    @field_validator("project")
    @classmethod
    def _project(cls, v: str | None) -> str | None:
        return None if v is None else _check_text(v, "project", 200)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else _check_text(v, "name", MAX_NAME)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        return _check_tags(v)

    @field_validator("config")
    @classmethod
    def _config(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return None
        try:
            text = json.dumps(v, allow_nan=False)
        except ValueError:
            raise ValueError("config values must be finite numbers (no NaN or Infinity)") from None
        if len(text) > MAX_CONFIG_BYTES:
            raise ValueError(
                f"config is {len(text)} bytes as JSON; the limit is {MAX_CONFIG_BYTES}"
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("config holds a lone surrogate") from None
        return v


class RunPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    tags: list[str] | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        return _check_tags(v)


class SeriesSummary(BaseModel):
    count: int
    first_step: int | None
    last_step: int | None
    last_value: float | str | None
    min: float | None
    max: float | None
    nan_count: int
    inf_count: int


class DiagnosisBadge(BaseModel):
    kind: str
    severity: str
    count: int = Field(description="Active diagnoses of this kind (e.g. one per layer).")


class RunOut(BaseModel):
    id: str
    project: str
    name: str
    status: Status
    config: dict[str, Any]
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    dropped_points: int
    num_points: int
    summary: dict[str, SeriesSummary] = Field(default_factory=dict)
    diagnoses: list[str] = Field(
        default_factory=list, description="Kinds of the run's active, unmuted diagnoses."
    )
    badges: list[DiagnosisBadge] = Field(
        default_factory=list,
        description="The same kinds with their most severe level, most severe first.",
    )


class RunList(BaseModel):
    runs: list[RunOut]
    total: int
    limit: int
    offset: int


class ProjectOut(BaseModel):
    name: str
    num_runs: int
    last_activity: datetime | None


class ProjectList(BaseModel):
    projects: list[ProjectOut]


def as_utc(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt
