"""The schema comes only from the migrations, and they match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from server.storage.base import Base
from server.storage.migrate import upgrade


def _diff(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    return diff


def test_upgrade_creates_every_table_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'losslens.db'}"
    upgrade(url)
    upgrade(url)  # a second upgrade is a no-op
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    engine.dispose()
    assert _diff(url) == []


def test_migrations_match_the_models_on_postgres(pg_url):
    assert _diff(pg_url) == []
