"""Fixtures of the SDK tests: a private spool root per test, fast settings, and a REAL Losslens
server started as a subprocess (``python -m server.cli serve``) on a free port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import client_sdk
from client_sdk import Settings
from client_sdk._hooks import live_runs
from tests.e2e.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def spool_root(tmp_path, monkeypatch) -> Iterator[Path]:
    """Every test spools under its own directory and never talks to a server by accident."""
    root = tmp_path / "spool"
    for var in ("LOSSLENS_URL", "LOSSLENS_API_KEY", "LOSSLENS_MODE", "LOSSLENS_PROJECT",
                "LOSSLENS_SPOOL_MAX_BYTES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LOSSLENS_DIR", str(root))
    monkeypatch.setenv("LOSSLENS_URL", f"http://127.0.0.1:{free_port()}")  # nothing there
    yield root
    client_sdk.finish(timeout=5)
    for run in live_runs():  # a test that forgot finish() must not leak its thread
        run.finish(timeout=5)


@pytest.fixture
def fast() -> Settings:
    """Settings with short intervals and backoff, so retries take milliseconds."""
    return Settings.from_env().with_overrides(
        flush_interval=0.02, backoff_base=0.01, backoff_max=0.05, request_timeout=5.0
    )


class ServerProcess:
    """A real ``losslens serve`` on ``port`` with a SQLite file; ``kill()`` (SIGKILL) and
    ``start()`` again keep the same port and database."""

    def __init__(self, db_path: Path, port: int | None = None) -> None:
        self.db_path = db_path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = db_path.with_suffix(".log")

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOSSLENS_")}
        env["LOSSLENS_DATA_DIR"] = str(self.db_path.parent)
        cmd = [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port),
               "--database-url", f"sqlite:///{self.db_path}"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if json.load(resp).get("status") == "ok":
                        return self
            except (OSError, ValueError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer /healthz in {timeout} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    # ------------------------------------------------------------------ reading back

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return json.load(resp)

    def delete(self, path: str) -> int:
        req = urllib.request.Request(self.url + path, method="DELETE")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status

    def run(self, run_id: str) -> dict:
        return self.get(f"/api/v1/runs/{run_id}")

    def series(self, run_id: str, keys: list[str], wall: bool = False) -> dict[str, dict]:
        """Every stored point of ``keys`` (no downsampling), by key."""
        q = urllib.request.quote(",".join(keys), safe=",")
        data = self.get(f"/api/v1/runs/{run_id}/series?keys={q}&wall={str(wall).lower()}")
        return {s["key"]: s for s in data["series"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One real server per test module."""
    srv = ServerProcess(tmp_path_factory.mktemp("server") / "losslens.db").start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path) -> Iterator[ServerProcess]:
    """A real server of the test's own (to kill and restart)."""
    srv = ServerProcess(tmp_path / "losslens.db").start()
    yield srv
    srv.stop()



@pytest.fixture
def run():
    """A sink for watch() (tests/client_sdk/watch_support.py), unwatched afterwards."""
    from client_sdk import _torch_watch

    from .watch_support import FakeRun

    r = FakeRun()
    yield r
    _torch_watch.unwatch(r)
