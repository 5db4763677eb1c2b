"""SQL access to diagnoses. Never commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..storage.models import Diagnosis, Project, Run, RunMute, utcnow


@dataclass
class FindingIn:
    """What a rule or a model check found; ``subject`` is "" for the run as a whole."""

    kind: str
    severity: str
    title: str
    recommendation: str = ""
    subject: str = ""
    step_start: int | None = None
    step_end: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def active_briefs(session: Session, run_id: str) -> list[dict[str, str]]:
    rows = session.scalars(
        select(Diagnosis)
        .where(Diagnosis.run_id == run_id, Diagnosis.status == "active", Diagnosis.muted.is_(False))
        .order_by(Diagnosis.id)
    )
    return [
        {"kind": d.kind, "severity": d.severity, "subject": d.subject, "title": d.title}
        for d in rows
    ]


def run_diagnoses(session: Session, run_id: str) -> list[Diagnosis]:
    return list(
        session.scalars(select(Diagnosis).where(Diagnosis.run_id == run_id).order_by(Diagnosis.id))
    )


def sync_findings(
    session: Session, run_id: str, source: str, findings: Iterable[FindingIn]
) -> None:
    """Upsert the findings of one source; its earlier findings that no longer hold are resolved.

    One row per (run, kind, subject): a finding seen again is updated in place; a resolved one
    that comes back is active again. Resolved rows are kept with their step range.
    """
    now = utcnow()
    muted = muted_kinds(session, run_id)
    existing = {
        (d.kind, d.subject): d
        for d in session.scalars(
            select(Diagnosis).where(Diagnosis.run_id == run_id, Diagnosis.source == source)
        )
    }
    seen = set()
    for f in findings:
        key = (f.kind, f.subject)
        seen.add(key)
        d = existing.get(key)
        if d is None:
            d = Diagnosis(
                run_id=run_id,
                kind=f.kind,
                subject=f.subject,
                source=source,
                first_seen_at=now,
                muted=False,
            )
            session.add(d)
            existing[key] = d
        d.severity, d.title, d.recommendation = f.severity, f.title, f.recommendation
        d.step_start, d.step_end, d.evidence = f.step_start, f.step_end, f.evidence
        d.status, d.resolved_at, d.updated_at = "active", None, now
        d.muted = f.kind in muted
    for key, d in existing.items():
        if key not in seen and d.status == "active":
            d.status, d.resolved_at, d.updated_at = "resolved", now, now
    session.flush()


def muted_kinds(session: Session, run_id: str) -> set[str]:
    return set(session.scalars(select(RunMute.kind).where(RunMute.run_id == run_id)))


def set_muted(session: Session, run_id: str, kind: str, muted: bool) -> None:
    """Mute or unmute a kind for a run: its diagnoses stay recorded, flagged ``muted``."""
    if muted:
        if kind not in muted_kinds(session, run_id):
            session.add(RunMute(run_id=run_id, kind=kind, created_at=utcnow()))
    else:
        session.execute(delete(RunMute).where(RunMute.run_id == run_id, RunMute.kind == kind))
    session.execute(
        update(Diagnosis)
        .where(Diagnosis.run_id == run_id, Diagnosis.kind == kind)
        .values(muted=muted)
    )
    session.flush()


def search(
    session: Session,
    project: str | None,
    kind: str | None,
    status: str | None,
    severity: str | None,
    include_muted: bool,
    limit: int,
    offset: int,
) -> tuple[list[Diagnosis], int]:
    """Diagnoses across runs, newest first, for automation."""
    from sqlalchemy import func

    query = select(Diagnosis)
    if project is not None:
        query = (
            query.join(Run, Run.id == Diagnosis.run_id)
            .join(Project, Project.id == Run.project_id)
            .where(Project.name == project)
        )
    if kind is not None:
        query = query.where(Diagnosis.kind == kind)
    if status is not None:
        query = query.where(Diagnosis.status == status)
    if severity is not None:
        query = query.where(Diagnosis.severity == severity)
    if not include_muted:
        query = query.where(Diagnosis.muted.is_(False))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Diagnosis.updated_at.desc(), Diagnosis.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total
