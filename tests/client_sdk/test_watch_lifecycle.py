"""watch(model)'s life cycle: hooks in and out, no leaks, eval passes, the system thread,
distributed ranks, and a training loop that never sees an exception from the watcher."""

from __future__ import annotations

import gc
import logging
import os
import socket
import sys
import time
import weakref

import pytest
import torch
from torch import nn
from torch.nn.modules import module as module_hooks

from client_sdk import _system, _torch_watch

from .watch_support import FakeRun, step

torch.set_num_threads(1)


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Sigmoid(),
                         nn.Linear(8, 2))


def hook_counts(model, opt):
    counts = [len(m._forward_pre_hooks) + len(m._forward_hooks) + len(m._backward_hooks)
              for m in model.modules()]
    counts.append(len(opt._optimizer_step_pre_hooks) + len(opt._optimizer_step_post_hooks))
    counts.append(len(module_hooks._global_forward_pre_hooks)
                  + len(module_hooks._global_forward_hooks))
    return counts


def test_unwatch_removes_every_hook_and_watching_twice_does_not_double_them(run):
    model, opt = mlp(), None
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = hook_counts(model, opt)
    _torch_watch.watch(run, model, opt, every=1, system=False)
    once = hook_counts(model, opt)
    assert once != before
    _torch_watch.watch(run, model, opt, every=1, system=False)
    assert hook_counts(model, opt) == once
    for _ in range(2):  # the first forwards add the forward, step pre- and activation hooks
        step(model, opt)
    engaged = hook_counts(model, opt)
    for _ in range(3):
        step(model, opt)
    assert hook_counts(model, opt) == engaged  # logged steps leave nothing more behind
    _torch_watch.unwatch(run, model)
    assert hook_counts(model, opt) == before
    assert _torch_watch._WATCHES == {}
    calls = run.calls
    step(model, opt)
    assert run.calls == calls


def test_no_reference_kept_after_the_model_is_deleted(run):
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    _torch_watch.watch(run, model, opt, every=1, system=True, system_interval=0.05)
    for _ in range(3):
        step(model, opt)
    refs = [weakref.ref(model)] + [weakref.ref(p) for p in model.parameters()]
    refs.append(weakref.ref(opt))
    del model, opt
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)
    assert _torch_watch._WATCHES == {}
    time.sleep(0.15)
    assert not any(t.name == "losslens-system" for t in __import__("threading").enumerate())


def test_eval_and_no_grad_passes_log_no_activations_by_default(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = _torch_watch.watch(run, model, opt, every=1, system=False)
    step(model, opt)
    model.eval()
    with torch.no_grad():
        model(torch.randn(5, 4))
    model.train()
    with torch.no_grad():
        model(torch.randn(5, 4))
    model.eval()
    model(torch.randn(5, 4))
    assert w.step == 1
    _torch_watch.unwatch(run)
    assert sorted(run.logs) == [0]
    assert not any(k.startswith("eval/") for k in run.logs[0])


def test_log_eval_pools_eval_passes_under_eval_keys(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _torch_watch.watch(run, model, opt, every=1, system=False, log_eval=True)
    step(model, opt)
    model.eval()
    xs = [torch.full((2, 4), -1.0), torch.full((3, 4), 2.0)]
    with torch.no_grad():
        for x in xs:
            model(x)
    model.train()
    step(model, opt)  # the next training forward logs the eval statistics (at step 1)
    _torch_watch.unwatch(run)
    ev = run.logs[1]
    assert ev["eval/input/min"] == -1.0 and ev["eval/input/max"] == 2.0
    assert ev["eval/input/mean"] == pytest.approx((-1.0 * 8 + 2.0 * 12) / 20)
    assert "eval/act_zero_frac/1" in ev and "eval/act_sat_frac/3" in ev
    assert "act_mean/1" in run.logs[1]  # the training step 1 itself


class NoopOptimizer(torch.optim.Optimizer):
    """Counts as a step (its step hooks run) without touching anything: cheap steps."""

    def __init__(self, params) -> None:
        super().__init__(params, {"lr": 0.1})

    def step(self, closure=None):
        return None


def python_memory() -> tuple[int, int]:
    """(allocated Python memory blocks, gc-tracked objects) after a full collection."""
    gc.collect()
    return sys.getallocatedblocks(), len(gc.get_objects())


def test_memory_stays_flat_over_100000_steps(run):
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    opt = NoopOptimizer(model.parameters())
    w = _torch_watch.watch(run, model, opt, every=1000, system=False)
    x = torch.randn(2, 2)
    run.keep = False
    for _ in range(2_000):
        model(x)
        opt.step()
    blocks, objects = python_memory()
    for _ in range(98_000):
        model(x)
        opt.step()
    blocks2, objects2 = python_memory()
    assert w.step == 100_000 and run.calls == 100
    assert blocks2 - blocks < 1_000 and objects2 - objects < 100
    assert len(w._inflight) == 0 and w._cur is None and w._snapshot is None


def test_memory_stays_flat_when_every_step_is_logged(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    run.keep = False
    w = _torch_watch.watch(run, model, opt, every=1, system=False, log_eval=True)

    def train(n):
        for i in range(n):
            step(model, opt)
            if i % 100 == 0:
                with torch.no_grad():
                    model.eval()
                    model(torch.randn(3, 4))
                    model.train()

    train(1_000)
    blocks, objects = python_memory()
    train(1_500)
    blocks2, objects2 = python_memory()
    assert blocks2 - blocks < 1_000 and objects2 - objects < 100
    assert len(w._inflight) == 0 and run.calls > 2_500


def test_a_failing_sink_never_reaches_the_training_loop(run, caplog):
    class Broken(FakeRun):
        def log(self, data, step=None):
            raise RuntimeError("sink down")

    bad = Broken()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    try:
        _torch_watch.watch(bad, model, opt, every=1, system=False)
        with caplog.at_level(logging.WARNING, logger="client_sdk"):
            for _ in range(3):
                step(model, opt)
        assert sum("stopped collecting" in r.message for r in caplog.records) == 1
    finally:
        _torch_watch.unwatch(bad)


def test_system_monitor_samples_and_logs_from_its_thread():
    logged = []
    steps = iter(range(0, 10_000, 5))

    class Sink:
        def log(self, data, step=None):
            logged.append((step, dict(data), __import__("threading").current_thread().name))

    mon = _system.SystemMonitor(Sink(), lambda: next(steps), interval=0.05,
                                gpu_fn=lambda: {"sys/gpu_mem_alloc_mb": 1.0})
    mon.start()
    deadline = time.monotonic() + 5
    while len(logged) < 2 and time.monotonic() < deadline:
        sum(i * i for i in range(20_000))
        time.sleep(0.01)
    mon.stop()
    assert len(logged) >= 2
    step_no, values, thread = logged[-1]
    assert thread == "losslens-system" and step_no % 5 == 0
    assert {"sys/cpu_percent", "sys/rss_mb", "sys/steps_per_sec", "sys/step_time",
            "sys/gpu_mem_alloc_mb"} <= set(values)
    assert values["sys/rss_mb"] > 10 and values["sys/cpu_percent"] >= 0
    assert values["sys/step_time"] == pytest.approx(1 / values["sys/steps_per_sec"])
    assert not mon._thread.is_alive()


def test_watch_starts_one_system_thread_per_run_and_unwatch_stops_it(run):
    a, b = mlp(), mlp()
    wa = _torch_watch.watch(run, a, system=True, system_interval=0.05)
    wb = _torch_watch.watch(run, b, system=True, system_interval=0.05)
    assert wa.monitor is not None and wb.monitor is None
    for _ in range(3):
        step(a)
    time.sleep(0.2)
    _torch_watch.unwatch(run)
    assert not wa.monitor._thread.is_alive()
    sys_steps = [s for s, d in run.logs.items() if "sys/rss_mb" in d]
    assert sys_steps and max(sys_steps) <= 2


def test_rank_other_than_zero_does_not_log_unless_all_ranks(run, monkeypatch):
    monkeypatch.setattr(_torch_watch, "_dist_info", lambda: (1, 2))
    model = mlp()
    assert _torch_watch.watch(run, model, every=1, system=False) is None
    assert all(not m._forward_pre_hooks for m in model.modules())
    w = _torch_watch.watch(run, model, every=1, system=False, all_ranks=True)
    assert w is not None
    step(model)
    _torch_watch.unwatch(run)
    assert run.logs[0]["rank1/dist/rank"] == 1.0
    assert "rank1/grad_norm/0" in run.logs[0] and "grad_norm/0" not in run.logs[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_data_parallel_is_unwrapped(run, monkeypatch):
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    monkeypatch.setitem(os.environ, "MASTER_ADDR", "127.0.0.1")
    monkeypatch.setitem(os.environ, "MASTER_PORT", str(_free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        model = mlp()
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        _torch_watch.watch(run, ddp, opt, every=1, system=False)
        x = torch.randn(3, 4)
        ddp(x).sum().backward()
        expected = float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))
        opt.step()
        _torch_watch.unwatch(run, ddp)
    finally:
        dist.destroy_process_group()
    got = run.logs[0]
    assert got["dist/rank"] == 0.0 and got["dist/world_size"] == 1.0
    assert "grad_norm/0" in got and not any("module." in k for k in got)
    assert got["grad_norm"] == pytest.approx(expected, rel=1e-6)


def test_a_failing_statistic_never_reaches_the_training_loop(run, monkeypatch, caplog):
    from client_sdk import _torch_state

    def broken(out, spec):
        raise RuntimeError("statistics bug")

    monkeypatch.setattr(_torch_state, "activation_sums", broken)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act = nn.ReLU()

        def forward(self, x):
            return torch.nn.functional.relu(self.act(self.fc(x))).sum(dim=1)

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = _torch_watch.watch(run, model, opt, every=1, system=False)
    with caplog.at_level(logging.WARNING, logger="client_sdk"):
        for _ in range(3):
            step(model, opt)
    assert w.step == 3
    assert sum("stopped collecting" in r.message for r in caplog.records) == 1


def test_lazy_modules_are_watched_once_materialised(run):
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _torch_watch.watch(run, model, opt, every=1, system=False)
    for _ in range(2):
        step(model, opt, torch.randn(3, 5))
    _torch_watch.unwatch(run)
    assert {"weight_norm/0", "grad_norm/0", "update_ratio/0"} <= set(run.logs[1])
