"""docker-compose.yml's topology from real processes: no Docker engine exists on our machines.

The server and worker commands and their environment are read from docker-compose.yml itself
(only hosts, ports and the database name are pointed at this machine), so the file and this
test cannot drift. A real run streams through it with API keys on and is diagnosed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

import client_sdk
from tests.e2e.procs import ROOT, create_key, free_port, get_json, redis_server, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _local(value: str, db_url: str, redis_url: str) -> str:
    """A compose value with its service hosts pointed at this machine."""
    if value.startswith("postgresql://"):
        return db_url
    if value.startswith("redis://"):
        return redis_url
    return value


def _command(service: dict, port: int) -> list[str]:
    cmd = list(service["command"])
    assert cmd[0] == "losslens"
    if "--port" in cmd:
        cmd[cmd.index("--port") + 1] = str(port)
    if "--host" in cmd:
        cmd[cmd.index("--host") + 1] = "127.0.0.1"  # our tests talk on loopback only
    return [sys.executable, "-m", "server.cli", *cmd[1:]]


def test_the_compose_file_has_the_production_topology():
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "server", "worker"}
    for name in services:
        assert "healthcheck" in services[name] or name == "worker"
    assert "--workers" in services["server"]["command"]
    assert services["server"]["environment"]["LOSSLENS_AUTH"] == "true"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER losslens" in dockerfile and "slim" in dockerfile


def test_a_run_streams_through_the_compose_topology_and_is_diagnosed(fresh_pg, tmp_path: Path):
    services = _compose()["services"]
    with redis_server(tmp_path) as redis:
        env = {
            k: _local(str(v), fresh_pg, redis.url)
            for k, v in services["server"]["environment"].items()
        }
        env["LOSSLENS_DIAGNOSE_INTERVAL"] = "0.5"
        keys = {scope: create_key("compose", scope, env=env) for scope in ("write", "read")}
        port = free_port()
        procs = []
        logs = []
        try:
            for name, extra in (("server", port), ("worker", None)):
                log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
                logs.append(log)
                svc_env = {
                    k: _local(str(v), fresh_pg, redis.url)
                    for k, v in services[name]["environment"].items()
                }
                procs.append(
                    subprocess.Popen(
                        _command(services[name], extra or 0),
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, **svc_env, "LOSSLENS_DIAGNOSE_INTERVAL": "0.5"},
                    )
                )
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _ready(url), 90, "the server's /readyz")
            wait_for(lambda: b"ready" in (tmp_path / "worker.log").read_bytes(), 90, "the worker")

            run = client_sdk.Run(
                project="compose",
                name="diverging",
                url=url,
                api_key=keys["write"],
                spool_dir=str(tmp_path / "spool"),
            )
            for step in range(300):
                run.log(
                    {"loss": 2.3 * math.exp(step / 40) if step < 200 else float("nan")}, step=step
                )
            run.finish(timeout=60)

            def kinds():
                req = urllib.request.Request(
                    f"{url}/api/v1/runs/{run.id}/diagnoses",
                    headers={"Authorization": f"Bearer {keys['read']}"},
                )
                with urllib.request.urlopen(req, timeout=5) as r:
                    return {d["kind"] for d in json.load(r)["diagnoses"]}

            found = wait_for(
                lambda: kinds() & {"nan_loss", "divergence"}, 60, "a diagnosis of the diverging run"
            )
            assert "nan_loss" in found
            req = urllib.request.Request(
                f"{url}/api/v1/runs/{run.id}", headers={"Authorization": f"Bearer {keys['read']}"}
            )
            with urllib.request.urlopen(req, timeout=5) as r:
                assert json.load(r)["num_points"] == 300
            # without a key, nothing
            with pytest.raises(urllib.error.HTTPError) as err:
                get_json(f"{url}/api/v1/runs/{run.id}")
            assert err.value.code == 401
            err.value.close()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
            for log in logs:
                log.close()


def _ready(url: str) -> bool:
    try:
        return get_json(f"{url}/readyz", timeout=2)["status"] == "ok"
    except OSError:
        return False
