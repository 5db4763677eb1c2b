"""Liveness, readiness, and a clear 503 (not a hang, not a 500) when the database is down."""

from __future__ import annotations

import socket
import uuid

from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we return: nothing listens there


def test_readyz_ok(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "broker": "not configured"}


def test_readyz_reports_a_broker_that_does_not_answer(sqlite_template, tmp_path):
    import shutil

    shutil.copy(sqlite_template, tmp_path / "db")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db'}",
        broker_url=f"redis://127.0.0.1:{_closed_port()}/0",
    )
    with TestClient(create_app(settings)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["database"] == "ok"
        assert r.json()["broker"].startswith("error")
        assert c.get("/healthz").status_code == 200


def test_database_down_is_503_with_retry_after():
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"
    with TestClient(create_app(Settings(database_url=url))) as c:
        r = c.get("/api/v1/runs")
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert "database is unavailable" in r.json()["detail"]
        r = c.put(f"/api/v1/runs/{uuid.uuid4()}", json={"project": "p"})
        assert r.status_code == 503
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200
