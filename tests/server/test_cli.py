"""The ``losslens`` command as a user runs it: real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest

from server.cli import _redact
from tests.e2e.procs import get_json, losslens_server


def _losslens(*args, env=None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        **kw,
    )


def test_db_upgrade_creates_the_default_database_in_the_data_dir(tmp_path):
    r = _losslens("db", "upgrade", env={"LOSSLENS_DATA_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "losslens.db").exists()
    assert str(tmp_path / "losslens.db") in r.stdout


def test_bad_database_url_fails_fast_with_a_message(tmp_path):
    r = _losslens("db", "upgrade", env={"LOSSLENS_DATABASE_URL": "mysql://x"})
    assert r.returncode != 0 and "LOSSLENS_DATABASE_URL" in r.stderr


@pytest.mark.slow
def test_serve_migrates_binds_localhost_and_answers(tmp_path):
    with losslens_server(f"sqlite:///{tmp_path / 'served.db'}", tmp_path) as base:
        assert get_json(base + "/healthz") == {"status": "ok"}
        run_id = str(uuid.uuid4())
        req = urllib.request.Request(
            f"{base}/api/v1/runs/{run_id}",
            method="PUT",
            data=json.dumps({"project": "cli"}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 201
        port = base.rsplit(":", 1)[1]
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        if listening:  # ss may be missing on a bare machine
            local_addresses = [line.split()[3] for line in listening.splitlines()]
            assert local_addresses == [f"127.0.0.1:{port}"]


def test_passwords_are_not_printed():
    assert _redact("postgresql+psycopg://u:secret@h/db") == "postgresql+psycopg://u:***@h/db"
    assert _redact("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_serve_refuses_a_public_address_without_auth(tmp_path):
    r = _losslens("serve", "--host", "0.0.0.0", "--database-url", f"sqlite:///{tmp_path}/x.db")
    assert r.returncode == 2 and "--insecure-no-auth" in r.stderr
    assert not (tmp_path / "x.db").exists()


def test_keys_create_list_revoke(tmp_path):
    db = f"sqlite:///{tmp_path}/k.db"
    r = _losslens(
        "keys",
        "create",
        "--project",
        "digits",
        "--scope",
        "write",
        "--name",
        "ci",
        "--database-url",
        db,
    )
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert key.startswith("ll_") and len(key) > 30 and "not shown again" in r.stderr
    listed = _losslens("keys", "list", "--database-url", db).stdout
    assert "digits\twrite" in listed and "active" in listed and key not in listed
    assert _losslens("keys", "revoke", "1", "--database-url", db).returncode == 0
    assert "revoked" in _losslens("keys", "list", "--database-url", db).stdout
    assert _losslens("keys", "revoke", "99", "--database-url", db).returncode == 1


@pytest.mark.slow
def test_structured_json_logs(tmp_path):
    env = {"LOSSLENS_LOG_FORMAT": "json"}
    with losslens_server(f"sqlite:///{tmp_path}/j.db", tmp_path, env=env) as base:
        get_json(base + "/healthz")
        log = tmp_path / f"server-{base.rsplit(':', 1)[1]}.log"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(r["logger"] == "uvicorn.access" and "/healthz" in r["message"] for r in records)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
