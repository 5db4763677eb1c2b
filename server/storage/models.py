"""The SQLAlchemy models. The schema itself is created only by the migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base
from .types import ExactFloat

RUN_STATUSES = ("running", "finished", "failed", "crashed")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Run(Base):
    __tablename__ = "runs"

    # A UUID chosen by the client, in canonical lowercase text form.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    __table_args__ = (Index("ix_runs_created_at", "created_at"),)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(16), default="running")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Points the client could not keep (spool full), as it reported them.
    dropped_points: Mapped[int] = mapped_column(BigInteger, default=0)
    num_points: Mapped[int] = mapped_column(BigInteger, default=0)

    # Loaded when used (ingest never needs them); lists load them in bulk (runs.repository).
    project: Mapped[Project] = relationship()
    tag_rows: Mapped[list[RunTag]] = relationship(
        cascade="all, delete-orphan", order_by="RunTag.position"
    )

    @property
    def tags(self) -> list[str]:
        return [t.tag for t in self.tag_rows]


class RunTag(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Series(Base):
    """One logged key of one run, with running summaries so lists never touch the points."""

    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_step: Mapped[int | None] = mapped_column(BigInteger)
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    last_value: Mapped[float | None] = mapped_column(ExactFloat)
    # min and max are over finite values; NaN and ±Inf are counted apart.
    min: Mapped[float | None] = mapped_column(ExactFloat)
    max: Mapped[float | None] = mapped_column(ExactFloat)
    nan_count: Mapped[int] = mapped_column(BigInteger, default=0)
    inf_count: Mapped[int] = mapped_column(BigInteger, default=0)


class Chunk(Base):
    """Points of one series in binary form: int64 steps, float64 values and wall times.

    Chunks may overlap in steps; where they do, the chunk with the higher id (written later)
    wins, at read time and at compaction.
    """

    __tablename__ = "chunks"
    __table_args__ = (Index("ix_chunks_series_steps", "series_id", "step_min", "step_max"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    step_min: Mapped[int] = mapped_column(BigInteger)
    step_max: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    vmin: Mapped[float | None] = mapped_column(ExactFloat)
    vmax: Mapped[float | None] = mapped_column(ExactFloat)
    nan_count: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[bytes] = mapped_column(LargeBinary)
    values: Mapped[bytes] = mapped_column(LargeBinary)
    walls: Mapped[bytes] = mapped_column(LargeBinary)


class IngestBatch(Base):
    """Batch ids seen per run: a batch sent again is recognised and changes nothing."""

    __tablename__ = "ingest_batches"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    num_points: Mapped[int] = mapped_column(Integer, default=0)


class Diagnosis(Base):
    """One finding about a run, updated in place as the run goes on (one row per run, source,
    kind and subject)."""

    __tablename__ = "diagnoses"
    # A rule and a model check may report the same kind on the same layer: one row each.
    __table_args__ = (UniqueConstraint("run_id", "source", "kind", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    # "" when the finding is about the run as a whole (NULL would defeat the unique key).
    subject: Mapped[str] = mapped_column(String(250), default="")
    source: Mapped[str] = mapped_column(String(16), default="rule")
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    step_start: Mapped[int | None] = mapped_column(BigInteger)
    step_end: Mapped[int | None] = mapped_column(BigInteger)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    title: Mapped[str] = mapped_column(Text)
    recommendation: Mapped[str] = mapped_column(Text, default="")
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunMute(Base):
    """A diagnosis kind the user muted for a run: still recorded, off badges and callbacks."""

    __tablename__ = "run_mutes"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """A key of one project with one scope. Only its SHA-256 is stored (keys are random)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100), default="")
    scope: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    project: Mapped[Project] = relationship(lazy="joined")
