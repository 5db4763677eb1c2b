"""Response bodies of the points API (the request body is parsed by ``body.py``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..runs.schemas import SeriesSummary


class DiagnosisBrief(BaseModel):
    kind: str
    severity: str
    subject: str
    title: str


class IngestOut(BaseModel):
    accepted: int = Field(description="Points in the batch.")
    new: int = Field(description="(key, step) pairs not stored before.")
    duplicate: bool = Field(description="True when this batch id was seen before.")
    diagnoses: list[DiagnosisBrief] = Field(default_factory=list)


class KeyOut(SeriesSummary):
    key: str


class KeyList(BaseModel):
    keys: list[KeyOut]


class SeriesOut(BaseModel):
    key: str
    steps: list[int]
    values: list[float | str] = Field(description='NaN and ±Inf as "NaN", "Infinity", "-Infinity"')
    wall: list[float] | None = None
    total: int = Field(description="Points in the requested range before downsampling.")
    downsampled: bool


class SeriesList(BaseModel):
    series: list[SeriesOut]
