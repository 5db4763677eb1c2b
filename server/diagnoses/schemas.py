"""Bodies of the diagnoses API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..validation import bad_text_reason

Severity = Literal["info", "warning", "critical"]


class ModelCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    severity: Severity
    subject: str = Field("", max_length=250)
    title: str = Field(min_length=1, max_length=500)
    recommendation: str = Field("", max_length=2000)
    evidence: dict[str, Any] = Field(default_factory=dict)

    @field_validator("subject", "title", "recommendation")
    @classmethod
    def _text(cls, v: str) -> str:
        if v:
            reason = bad_text_reason(v, 2000)
            if reason:
                raise ValueError(f"text {reason}")
        return v

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            text = json.dumps(v, allow_nan=False)
        except ValueError:
            raise ValueError("evidence must hold finite numbers only") from None
        if len(text) > 16_384:
            raise ValueError("evidence is over 16 KiB as JSON")
        return v


class ModelChecksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    findings: list[ModelCheckIn] = Field(max_length=1000)


class DiagnosisOut(BaseModel):
    id: int
    run_id: str
    kind: str
    subject: str
    source: str
    severity: Severity
    status: Literal["active", "resolved"]
    muted: bool
    step_start: int | None
    step_end: int | None
    evidence: dict[str, Any]
    title: str
    recommendation: str
    first_seen_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


class DiagnosisList(BaseModel):
    diagnoses: list[DiagnosisOut]


class DiagnosisPage(DiagnosisList):
    total: int
    limit: int
    offset: int


class MuteList(BaseModel):
    kinds: list[str]
