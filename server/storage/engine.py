"""Engines and sessions. Nothing is created at import time."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout on SQLite, pre-ping on PostgreSQL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Take transaction control from pysqlite so that we can BEGIN IMMEDIATE below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A deferred transaction that reads, then writes, fails at once with "database is
            # locked" when another writer got in between; taking the write lock up front makes
            # concurrent writers wait (busy timeout) instead.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # Fail fast when PostgreSQL is down (connecting gives up after 2 s: the API answers 503,
    # never hangs) and recover by itself: dead pooled connections are replaced on checkout.
    # The pool is as large as the request thread pool (40), so that under load a request
    # waits its turn for a connection instead of failing.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=20,
        max_overflow=20,
        pool_timeout=30,
        connect_args={"connect_timeout": 2},
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
