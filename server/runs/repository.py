"""SQL access to projects and runs. Never commits: the caller owns the transaction."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload, selectinload

from ..storage.models import Diagnosis, Project, Run, RunTag, Series

SORTS = {
    "created_at": Run.created_at,
    "updated_at": Run.updated_at,
    "name": func.lower(Run.name),  # the same case-insensitive order on every backend
    "status": Run.status,
    "num_points": Run.num_points,
}


def get_or_create_project(session: Session, name: str) -> Project:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(Project).values(name=name).on_conflict_do_nothing())
    return session.scalars(select(Project).where(Project.name == name)).one()


def get_run(session: Session, run_id: str) -> Run | None:
    return session.get(Run, run_id)


def list_runs(
    session: Session,
    project: str | None,
    status: str | None,
    tag: str | None,
    q: str | None,
    limit: int,
    offset: int,
    sort: str = "-created_at",
) -> tuple[list[Run], int]:
    query = select(Run)
    if project is not None:
        query = query.join(Project, Project.id == Run.project_id).where(Project.name == project)
    if status is not None:
        query = query.where(Run.status == status)
    if tag is not None:
        query = query.where(Run.id.in_(select(RunTag.run_id).where(RunTag.tag == tag)))
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(Run.name).like(f"%{escaped}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = SORTS[sort.lstrip("-")]
    order = column.desc() if sort.startswith("-") else column.asc()
    runs = session.scalars(
        query.order_by(order, Run.id)
        .limit(limit)
        .offset(offset)
        .options(joinedload(Run.project), selectinload(Run.tag_rows))
    ).all()
    return list(runs), total


def series_of_runs(
    session: Session, run_ids: list[str], keys: list[str] | None = None
) -> dict[str, list[Series]]:
    """The series rows (summaries) of runs; only ``keys`` when given."""
    out: dict[str, list[Series]] = {r: [] for r in run_ids}
    if run_ids and keys != []:
        query = select(Series).where(Series.run_id.in_(run_ids))
        if keys is not None:
            query = query.where(Series.key.in_(keys))
        for s in session.scalars(query):
            out[s.run_id].append(s)
    return out


SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def active_diagnosis_badges(session: Session, run_ids: list[str]) -> dict[str, list[tuple]]:
    """Per run: (kind, most severe level, count) of active, unmuted diagnoses, worst first."""
    found: dict[str, dict[str, list]] = {r: {} for r in run_ids}
    if run_ids:
        rows = session.execute(
            select(Diagnosis.run_id, Diagnosis.kind, Diagnosis.severity).where(
                Diagnosis.run_id.in_(run_ids),
                Diagnosis.status == "active",
                Diagnosis.muted.is_(False),
            )
        )
        for run_id, kind, severity in rows:
            badge = found[run_id].setdefault(kind, [kind, severity, 0])
            if SEVERITY_RANK.get(severity, 3) < SEVERITY_RANK.get(badge[1], 3):
                badge[1] = severity
            badge[2] += 1
    return {
        r: sorted(
            (tuple(b) for b in kinds.values()), key=lambda b: (SEVERITY_RANK.get(b[1], 3), b[0])
        )
        for r, kinds in found.items()
    }


def list_projects(session: Session) -> list[tuple[str, int, object]]:
    rows = session.execute(
        select(Project.name, func.count(Run.id), func.max(Run.updated_at))
        .outerjoin(Run, Run.project_id == Project.id)
        .group_by(Project.id, Project.name)
        .order_by(Project.name)
    )
    return [tuple(r) for r in rows]
