"""What the watch() tests share: a sink standing in for a Run and small helpers (the ``run``
fixture built on it is in conftest.py).

The sink is not a mock of our storage: watch() only needs something with ``log`` and
``report_model_checks``; the SDK's real Run is tested against a real server elsewhere.
"""

from __future__ import annotations

import torch

from client_sdk import _torch_watch


class FakeRun:
    """Records what watch() logs (merged per step) and every model-check report."""

    def __init__(self, config: dict | None = None) -> None:
        self.id = "fake"
        self.config = config or {}
        self.logs: dict[int, dict[str, float]] = {}
        self.calls = 0
        self.keep = True  # False: count calls only (memory tests)
        self.reports: list[list[dict]] = []

    def log(self, data, step=None):
        self.calls += 1
        if self.keep:
            self.logs.setdefault(step, {}).update(data)

    def report_model_checks(self, findings):
        self.reports.append(list(findings))

    @property
    def checks(self) -> list[dict]:
        """The latest model-check report."""
        return self.reports[-1] if self.reports else []

    def kinds(self) -> list[tuple[str, str, str]]:
        return sorted((f["kind"], f["subject"], f["severity"]) for f in self.checks)


def watch(run, model, opt=None, every=1, **kw):
    """watch() without the system thread (it samples on a timer)."""
    kw.setdefault("system", False)
    return _torch_watch.watch(run, model, opt, every=every, **kw)


def step(model, opt=None, x=None):
    """One training step on a random batch of shape (3, 4)."""
    x = torch.randn(3, 4) if x is None else x
    loss = model(x).sum()
    if opt is not None:
        opt.zero_grad()
    loss.backward()
    if opt is not None:
        opt.step()
