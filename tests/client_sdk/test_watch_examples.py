"""watch() through the real client_sdk Run (in-memory transport), and the example scripts."""

from __future__ import annotations

import importlib
import os
import sys

import pytest
import torch
from torch import nn

import client_sdk
from client_sdk.testing import MemoryTransport

torch.set_num_threads(1)

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


@pytest.fixture
def transport(tmp_path, monkeypatch):
    """client_sdk.init() answered in memory, spooling under tmp_path."""
    tr = MemoryTransport()
    real_init = client_sdk.init

    def init(**kw):
        kw.pop("url", None)
        kw.pop("mode", None)
        tr.run = real_init(transport=tr, spool_dir=str(tmp_path), **kw)
        return tr.run

    monkeypatch.setattr(client_sdk, "init", init)
    yield tr
    client_sdk.finish(timeout=5)


def test_run_watch_streams_layer_signals_and_model_checks(transport):
    run = client_sdk.init(project="p", config={"batch_size": 4})
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2),
                          nn.Softmax(dim=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run.watch(model, opt, every=2, loss_fn=nn.CrossEntropyLoss(), system=False)
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(torch.randn(4, 3)), torch.tensor([0, 1, 1, 0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    run.unwatch(model)
    assert run.finish(timeout=10)
    steps, values = transport.series(run.id, "grad_norm")
    assert steps == [0, 2, 4] and all(v > 0 for v in values)
    assert transport.series(run.id, "act_zero_frac/2")[0] == [0, 2, 4]
    assert transport.series(run.id, "lr")[1] == [0.1, 0.1, 0.1]
    kinds = sorted(f["kind"] for f in transport.model_checks[run.id])
    assert kinds == ["output_activation", "small_batch_norm"]


def load_example(name: str):
    sys.path.insert(0, os.path.abspath(EXAMPLES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


@pytest.mark.parametrize("name, argv, check", [
    ("mlp_digits", ["--zero-init"], ("symmetric_init", "critical")),
    ("cnn_digits", ["--batch-size", "2", "--train-size", "100"], ("small_batch_norm", "critical")),
    ("rnn_sequence", ["--unscaled-inputs", "--train-size", "200"], None),
])
def test_examples_run_and_stream(transport, name, argv, check):
    module = load_example(name)
    last = module.run(["--fast", "--epochs", "1", "--every", "5", "--eval-every", "10", *argv])
    run = transport.run
    assert 0.0 <= last["val/acc"] <= 1.0
    assert transport.runs[run.id]["status"] == "finished"
    assert transport.runs[run.id]["config"]["n_classes"] >= 2
    for key in ("loss", "val/loss", "val/acc", "grad_norm", "lr", "input/mean"):
        assert transport.series(run.id, key)[0], key
    findings = {(f["kind"], f["severity"]) for f in transport.model_checks.get(run.id, [])}
    if check is not None:
        assert check in findings
    if name == "rnn_sequence":
        assert transport.series(run.id, "input/mean")[1][0] == pytest.approx(50.0, abs=3.0)
