"""Shared fixtures: real SQLite files and a real PostgreSQL database, migrated once."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from server.settings import Settings
from server.storage.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "LOSSLENS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TABLES = (
    "chunks",
    "series",
    "ingest_batches",
    "diagnoses",
    "run_mutes",
    "run_tags",
    "runs",
    "projects",
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    """A migrated SQLite file; each test gets a copy (faster than migrating per test)."""
    path = tmp_path_factory.mktemp("template") / "losslens.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


@contextlib.contextmanager
def migrated_pg_database(prefix: str) -> Iterator[str]:
    """A new PostgreSQL database migrated with the real migrations, dropped afterwards.

    PostgreSQL runs on every machine of this project, CI's included: if it is missing the
    tests fail (they never skip).
    """
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - turned into a clear failure
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One PostgreSQL database for the session's storage tests (truncated after each)."""
    with migrated_pg_database("losslens_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, sqlite_template) -> Iterator[str]:
    """Each storage test runs on a real SQLite file and on real PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "losslens.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_url")
    yield url
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(db_url) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture
def client(settings):
    from fastapi.testclient import TestClient

    from server.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c
