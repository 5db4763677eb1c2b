"""`losslens sync` as a user runs it: an offline run uploaded by the command, exactly."""

from __future__ import annotations

import subprocess
import sys

import pytest

import client_sdk

from .conftest import ROOT


@pytest.mark.slow
def test_losslens_sync_uploads_an_offline_run_exactly(server, tmp_path):
    spool = tmp_path / "spool"
    run = client_sdk.Run(project="sync-cli", name="offline", mode="offline", spool_dir=str(spool))
    for step in range(2000):
        run.log({"loss": 1.0 / (step + 1), "acc": step / 2000}, step=step)
    assert run.finish(timeout=30)
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "sync", str(spool), "--url", server.url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "batches" in out.stderr  # the progress bar
    info = server.run(run.id)
    assert info["num_points"] == 4000 and info["name"] == "offline"
    series = server.series(run.id, ["loss"])["loss"]
    assert series["steps"] == list(range(2000))
    # A second sync finds nothing left to send and changes nothing.
    again = subprocess.run(
        [sys.executable, "-m", "server.cli", "sync", str(spool), "--url", server.url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert again.returncode == 0
    assert server.run(run.id)["num_points"] == 4000
