"""SQL access to diagnoses. Never commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.models import Diagnosis, utcnow


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
    for key, d in existing.items():
        if key not in seen and d.status == "active":
            d.status, d.resolved_at, d.updated_at = "resolved", now, now
    session.flush()
