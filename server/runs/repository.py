"""SQL access to projects and runs. Never commits: the caller owns the transaction."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..storage.models import Diagnosis, Project, Run, RunTag, Series


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
    runs = session.scalars(
        query.order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset)
    ).all()
    return list(runs), total


def series_of_runs(session: Session, run_ids: list[str]) -> dict[str, list[Series]]:
    out: dict[str, list[Series]] = {r: [] for r in run_ids}
    if run_ids:
        for s in session.scalars(select(Series).where(Series.run_id.in_(run_ids))):
            out[s.run_id].append(s)
    return out


def active_diagnosis_kinds(session: Session, run_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {r: [] for r in run_ids}
    if run_ids:
        rows = session.execute(
            select(Diagnosis.run_id, Diagnosis.kind)
            .where(
                Diagnosis.run_id.in_(run_ids),
                Diagnosis.status == "active",
                Diagnosis.muted.is_(False),
            )
            .distinct()
            .order_by(Diagnosis.run_id, Diagnosis.kind)
        )
        for run_id, kind in rows:
            out[run_id].append(kind)
    return out


def list_projects(session: Session) -> list[tuple[str, int, object]]:
    rows = session.execute(
        select(Project.name, func.count(Run.id), func.max(Run.updated_at))
        .outerjoin(Run, Run.project_id == Project.id)
        .group_by(Project.id, Project.name)
        .order_by(Project.name)
    )
    return [tuple(r) for r in rows]
