"""watch(model) between and across logged steps: which hooks are installed when, and the
update-ratio buffers reused from one logged step to the next."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.modules import module as module_hooks

from client_sdk import _torch_state, _torch_watch

from .watch_support import FakeRun, step, watch

torch.set_num_threads(1)


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(),
                         nn.Linear(8, 2))


def module_hook_count(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_steps_between_logged_ones_run_no_forward_hook(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = watch(run, model, opt, every=4)
    seen = []
    for _ in range(9):
        step(model, opt)
        seen.append((w.step, module_hook_count(model), len(opt._optimizer_step_pre_hooks)))
    # after step s: s is the next step; the step before a logged one arms the root's
    # forward pre-hook, the logged forward adds the rest, its optimizer step removes them
    assert seen == [(1, 0, 0), (2, 0, 0), (3, 0, 0), (4, 1, 0), (5, 0, 0), (6, 0, 0),
                    (7, 0, 0), (8, 1, 0), (9, 0, 0)]
    assert not module_hooks._global_forward_hooks and not module_hooks._global_forward_pre_hooks
    _torch_watch.unwatch(run)
    assert sorted(run.logs) == [0, 4, 8]
    assert all({"act_mean/1", "update_ratio/0", "grad_norm/4"} <= set(run.logs[s])
               for s in (0, 4, 8))


def test_every_step_logged_keeps_its_hooks_between_steps(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch(run, model, opt, every=1)
    counts = []
    for _ in range(4):
        step(model, opt)
        counts.append((module_hook_count(model), len(opt._optimizer_step_pre_hooks)))
    # root pre + post hooks, a hook on each of the 2 activation modules (from the second
    # step: the first forward is probed through global hooks), the step pre-hook
    assert counts == [(2, 1), (4, 1), (4, 1), (4, 1)]


def test_eval_passes_between_logged_steps_are_still_seen_with_log_eval(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch(run, model, opt, every=3, log_eval=True)
    step(model, opt)
    step(model, opt)  # step 1, not logged
    model.eval()
    with torch.no_grad():
        model(torch.full((2, 4), 3.0))
    model.train()
    step(model, opt)  # step 2: the eval pass above is logged at step 2
    _torch_watch.unwatch(run)
    assert run.logs[2]["eval/input/mean"] == 3.0
    assert "eval/act_zero_frac/1" in run.logs[2]


def test_without_optimizer_activation_hooks_follow_the_logged_forwards(run):
    model = mlp()
    watch(run, model, every=3)
    counts = []
    for _ in range(7):
        step(model)
        counts.append(module_hook_count(model))
    _torch_watch.unwatch(run)
    assert sorted(run.logs) == [0, 3, 6]
    # root pre + post hooks always (steps are forwards); activation hooks on logged forwards
    assert counts[3] == 4 and counts[4] == 2 and counts[6] == 4
    assert all("act_zero_frac/1" in run.logs[s] for s in (0, 3, 6))


class SetTo(torch.optim.Optimizer):
    """Each step sets the parameters to the next of ``targets`` (one list per step)."""

    def __init__(self, params, targets):
        super().__init__(params, {"lr": 0.5})
        self.targets = iter(targets)

    @torch.no_grad()
    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"]]
        for p, t in zip(params, next(self.targets), strict=True):
            p.copy_(t)


def set_to_states(seed: int, n: int):
    """A Linear(3, 2) at the first of ``n`` random states and a SetTo optimizer that moves it
    through the others, one per step; returns (layer, optimizer, states)."""
    layer = nn.Linear(3, 2)
    torch.manual_seed(seed)
    states = [[torch.randn(2, 3), torch.randn(2)] for _ in range(n)]
    with torch.no_grad():
        layer.weight.copy_(states[0][0])
        layer.bias.copy_(states[0][1])
    return layer, SetTo(layer.parameters(), states[1:]), states


def ratio(before, after):
    pairs = zip(after, before, strict=True)
    delta = math.sqrt(sum(float((a - b).double().pow(2).sum()) for a, b in pairs))
    return delta / math.sqrt(sum(float(a.double().pow(2).sum()) for a in after))


def test_update_ratio_is_exact_on_every_logged_step_with_reused_buffers(run):
    layer, opt, states = set_to_states(1, 4)
    w = watch(run, layer, opt, every=1)
    step(layer, opt, torch.ones(2, 3))
    snap, bufs = w._snap, w._snap._bufs
    for _ in range(2):
        step(layer, opt, torch.ones(2, 3))
    assert w._snap is snap and w._snap._bufs is bufs  # one set of buffers for all steps
    _torch_watch.unwatch(run)
    for s in range(3):
        assert run.logs[s]["update_ratio/root"] == pytest.approx(
            ratio(states[s], states[s + 1]), rel=1e-5)


def test_update_ratio_after_the_model_changes_dtype(run):
    layer = nn.Linear(3, 2)
    torch.manual_seed(2)
    states = [[torch.randn(2, 3, dtype=torch.float64), torch.randn(2, dtype=torch.float64)]
              for _ in range(3)]
    opt = SetTo(layer.parameters(), [[t.float() for t in states[0]], *states[1:]])
    watch(run, layer, opt, every=1)
    step(layer, opt, torch.ones(2, 3))  # float32 buffers
    layer.double()  # the same Parameter objects, new data: the buffers are rebuilt
    step(layer, opt, torch.ones(2, 3, dtype=torch.float64))
    _torch_watch.unwatch(run)
    assert run.logs[1]["update_ratio/root"] == pytest.approx(
        ratio(states[0], states[1]), rel=1e-6)


def test_update_ratio_of_a_module_with_two_dtypes_and_a_frozen_parameter(run):
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.tensor([3.0, 4.0]))
            self.b = nn.Parameter(torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64))
            self.frozen = nn.Parameter(torch.tensor([10.0]))  # trainable, not in the optimizer

        def forward(self, x):
            return x * (self.a.sum() + self.b.sum().float() + self.frozen.sum())

    model = Mixed()
    a1, b1 = torch.tensor([3.0, 5.0]), torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    opt = SetTo([model.a, model.b], [[a1, b1]])
    watch(run, model, opt, every=1)
    step(model, opt, torch.ones(2))
    _torch_watch.unwatch(run)
    got = run.logs[0]
    assert got["update_ratio/root"] == pytest.approx(math.sqrt(1 + 4) / math.sqrt(9 + 25 + 21))
    assert got["weight_norm/root"] == pytest.approx(math.sqrt(9 + 25 + 21 + 100))


def test_large_snapshots_are_not_kept_between_steps(run, monkeypatch):
    monkeypatch.setattr(_torch_state, "KEEP_SNAPSHOT_BYTES", 16)
    layer, opt, states = set_to_states(3, 3)
    w = watch(run, layer, opt, every=1)
    for _ in range(2):
        step(layer, opt, torch.ones(2, 3))
    assert not w._snap.keep and w._snap._bufs is None
    _torch_watch.unwatch(run)
    for s in range(2):
        assert run.logs[s]["update_ratio/root"] == pytest.approx(
            ratio(states[s], states[s + 1]), rel=1e-5)


def test_a_float64_model_logs_every_statistic(run):
    model = mlp().double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(5, 4, dtype=torch.float64)
    with torch.no_grad():
        hidden = model[3](model[2](model[1](model[0](x))))
    watch(run, model, opt, every=1)
    step(model, opt, x)
    _torch_watch.unwatch(run)
    got = run.logs[0]
    assert got["input/mean"] == pytest.approx(float(x.mean()), rel=1e-12)
    assert got["act_std/3"] == pytest.approx(float(hidden.std(unbiased=False)), rel=1e-9)
    assert got["act_sat_frac/3"] == float((hidden.abs() >= 0.99).double().mean())
    assert {"grad_norm", "update_ratio/0", "weight_norm/4"} <= set(got)


def test_values_read_in_place_on_the_cpu_equal_the_stacked_host_copy(run, monkeypatch):
    def logged(force_copy):
        r = FakeRun()
        if force_copy:  # as for device tensors: one stacked copy, drained at the next step
            monkeypatch.setattr(_torch_state, "_IS_CPU", lambda t: False)
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        watch(r, model, opt, every=1)
        torch.manual_seed(5)
        for _ in range(3):
            step(model, opt)
        _torch_watch.unwatch(r)
        monkeypatch.undo()
        return r.logs

    direct, copied = logged(False), logged(True)
    assert sorted(direct) == sorted(copied) == [0, 1, 2]
    for s in direct:
        assert direct[s].keys() == copied[s].keys()
        for key, value in direct[s].items():
            assert copied[s][key] == pytest.approx(value, rel=1e-6, nan_ok=True), key


def param_hook_count(model):
    return sum(len(p._post_accumulate_grad_hooks or {}) for p in model.parameters())


def test_the_backward_end_is_seen_through_one_parameter_hooked_only_while_logging(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch(run, model, opt, every=2)
    counts = []
    for _ in range(4):
        x = torch.randn(3, 4)
        loss = model(x).sum()
        opt.zero_grad()
        loss.backward()
        counts.append(param_hook_count(model))  # after the backward, before the step
        opt.step()
    assert counts == [1, 0, 1, 0]
    _torch_watch.unwatch(run)
    assert param_hook_count(model) == 0
    assert all("grad_norm" in run.logs[s] for s in (0, 2))


def test_a_trigger_parameter_without_gradient_costs_one_step_of_gradient_norms(run):
    class FirstUnused(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Linear(4, 4)  # the first parameter the optimizer updates
            self.used = nn.Linear(4, 2)

        def forward(self, x):
            return self.used(x)

    model = FirstUnused()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch(run, model, opt, every=1)
    norms = []
    for _ in range(3):
        loss = model(torch.randn(5, 4)).sum()
        opt.zero_grad()
        loss.backward()
        norms.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.used.parameters())))
        opt.step()
    _torch_watch.unwatch(run)
    assert "grad_norm" not in run.logs[0] and "weight_norm/used" in run.logs[0]
    for s in (1, 2):  # from then on the model's output is hooked
        assert run.logs[s]["grad_norm"] == pytest.approx(norms[s], rel=1e-6)
