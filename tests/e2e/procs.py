"""Real processes for end-to-end tests: Redis, ``losslens serve``, ``losslens worker``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def get_json(url: str, timeout: float = 5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def server_up(url: str) -> bool:
    """True when ``url``'s /healthz answers."""
    try:
        get_json(url + "/healthz", timeout=1)
        return True
    except OSError:
        return False


class Redis:
    """A redis-server of the test's own on a free port, so it can be stopped and started."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._pong, 10, "redis to start")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[Redis]:
    r = Redis(tmp)
    r.start()
    try:
        yield r
    finally:
        r.stop()


def spawn_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``losslens <args>`` as a child process, its output appended to ``log``."""
    out = open(log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    finally:
        out.close()


def create_key(project: str, scope: str, *, database_url: str | None = None,
               env: dict[str, str] | None = None) -> str:
    """A key made as an operator does: ``losslens keys create`` (plaintext on stdout)."""
    args = ["keys", "create", "--project", project, "--scope", scope]
    if database_url is not None:
        args += ["--database-url", database_url]
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip().splitlines()[0]


@contextlib.contextmanager
def losslens_server(
    database_url: str,
    tmp: Path,
    broker_url: str = "",
    port: int | None = None,
    interval: float = 0.5,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``losslens serve`` on a free port, its output in ``tmp/server-<port>.log``."""
    port = port or free_port()
    env = {
        "LOSSLENS_BROKER_URL": broker_url,
        "LOSSLENS_DIAGNOSE_INTERVAL": str(interval),
        "LOSSLENS_LOG_LEVEL": "info",
        **(env or {}),
    }
    proc = spawn_cli(
        ["serve", "--port", str(port), "--database-url", database_url],
        env,
        tmp / f"server-{port}.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server_up(url) or proc.poll() is not None, 60, "the server to start")
        assert proc.poll() is None, (tmp / f"server-{port}.log").read_text()[-2000:]
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.contextmanager
def celery_worker(database_url: str, broker_url: str, tmp: Path) -> Iterator[subprocess.Popen]:
    log = tmp / "worker.log"
    args = ["worker", "--broker-url", broker_url, "--database-url", database_url]
    proc = spawn_cli(args, {}, log)
    try:
        wait_for(
            lambda: b"ready" in log.read_bytes() or proc.poll() is not None,
            60,
            "the celery worker to be ready",
        )
        assert proc.poll() is None, log.read_text()[-2000:]
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


class ServerProc:
    """``losslens serve`` that a test can SIGKILL and start again on the same port."""

    def __init__(self, database_url: str, tmp: Path, broker_url: str = "", interval: float = 0.5):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "LOSSLENS_BROKER_URL": broker_url,
            "LOSSLENS_DIAGNOSE_INTERVAL": str(interval),
            "LOSSLENS_LOG_LEVEL": "info",
        }
        self.database_url = database_url
        self.log = tmp / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = spawn_cli(
            ["serve", "--port", str(self.port), "--database-url", self.database_url],
            self.env,
            self.log,
        )
        wait_for(lambda: server_up(self.url) or self.proc.poll() is not None, 60, "the server")
        assert self.proc.poll() is None, self.log.read_text()[-2000:]

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
