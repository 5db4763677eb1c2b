"""watch(model): every logged statistic against a hand computation on known tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from client_sdk import _torch_watch

from .watch_support import watch

torch.set_num_threads(1)


class Identity4(nn.Module):
    """x -> act(x W) with W = I, no bias: the activation sees the input unchanged."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(4))
        self.act = act

    def forward(self, x):
        return self.act(self.fc(x))


def one_step(model, x, opt=None, target=None):
    out = model(x)
    loss = out.sum() if target is None else F.mse_loss(out, target)
    if opt is not None:
        opt.zero_grad()
    loss.backward()
    if opt is not None:
        opt.step()
    return out


def close(a, b, rel=1e-6, abs_=1e-7):
    return a == pytest.approx(b, rel=rel, abs=abs_)


def test_input_statistics(run):
    model = Identity4(nn.Identity())
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5], [4.0, 0.0, -1.0, 2.5]])
    watch(run, model)
    one_step(model, x)
    _torch_watch.unwatch(run)
    got = run.logs[0]
    xs = x.numpy().astype(np.float64)
    assert close(got["input/mean"], xs.mean())
    assert close(got["input/std"], xs.std())  # population std (ddof=0)
    assert got["input/min"] == -2.0 and got["input/max"] == 4.0


def test_relu_dead_fraction_is_exact_and_moments_match(run):
    model = Identity4(nn.ReLU())
    x = torch.tensor([[1.0, -1.0, 0.0, 2.0], [-3.0, -0.5, 4.0, 0.0]])  # 5 of 8 give 0
    watch(run, model)
    one_step(model, x)
    _torch_watch.unwatch(run)
    got = run.logs[0]
    y = np.maximum(x.numpy().astype(np.float64), 0)
    assert got["act_zero_frac/act"] == 5 / 8
    assert close(got["act_mean/act"], y.mean())
    assert close(got["act_std/act"], y.std())
    assert "act_sat_frac/act" not in got


@pytest.mark.parametrize("act, x, expected", [
    # sigmoid: below 0.01 or above 0.99 <=> |x| > 4.595
    (nn.Sigmoid(), [[-10.0, -3.0, 0.0, 3.0], [10.0, 6.0, 4.0, -4.7]], 4 / 8),
    # tanh: |y| > 0.99 <=> |x| > 2.647
    (nn.Tanh(), [[-3.0, -2.0, 0.0, 1.0], [3.0, 2.7, -2.6, 0.1]], 3 / 8),
])
def test_saturated_fraction(run, act, x, expected):
    model = Identity4(act)
    watch(run, model)
    one_step(model, torch.tensor(x))
    _torch_watch.unwatch(run)
    got = run.logs[0]
    y = act(torch.tensor(x, dtype=torch.float64)).numpy()
    assert got["act_sat_frac/act"] == expected
    assert close(got["act_mean/act"], y.mean(), rel=1e-5)
    assert close(got["act_std/act"], y.std(), rel=1e-5)
    assert "act_zero_frac/act" not in got


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.Tanh(), nn.Linear(6, 3))


def test_global_grad_norm_equals_clip_grad_norm_and_is_read_before_clipping(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch(run, model, opt)
    x, target = torch.randn(8, 5), torch.randn(8, 3) * 10
    opt.zero_grad()
    F.mse_loss(model(x), target).backward()
    per_layer = {name: math.sqrt(sum(float(p.grad.pow(2).sum()) for p in m.parameters()))
                 for name, m in model.named_children() if any(True for _ in m.parameters())}
    reported = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.01)
    opt.step()
    _torch_watch.unwatch(run)
    got = run.logs[0]
    assert float(reported) > 0.01  # the clip did change the gradients...
    assert close(got["grad_norm"], float(reported))  # ...after watch read them
    for name, norm in per_layer.items():
        assert close(got[f"grad_norm/{name}"], norm, rel=1e-5)
    assert got["grad_nonfinite"] == 0.0


def test_nonfinite_gradient_flag(run):
    model = mlp()
    watch(run, model)
    x = torch.randn(4, 5)
    x[0, 0] = float("nan")
    one_step(model, x)
    _torch_watch.unwatch(run)
    got = run.logs[0]
    assert got["grad_nonfinite"] == 1.0
    assert math.isnan(got["grad_norm"])


class SetTo(torch.optim.Optimizer):
    """An optimizer whose step sets each parameter to a given tensor."""

    def __init__(self, params, targets):
        super().__init__(params, {"lr": 0.5})
        self.targets = targets

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p, t in zip(group["params"], self.targets, strict=True):
                p.copy_(t)


def test_update_ratio_and_weight_norm_from_known_weights(run):
    layer = nn.Linear(2, 2)
    w0 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    b0 = torch.tensor([0.5, -0.5])
    w1 = torch.tensor([[1.1, 2.0], [3.0, 3.8]])
    b1 = torch.tensor([0.5, -0.4])
    with torch.no_grad():
        layer.weight.copy_(w0)
        layer.bias.copy_(b0)
    opt = SetTo(layer.parameters(), [w1, b1])
    watch(run, layer, opt)
    one_step(layer, torch.ones(3, 2), opt)
    _torch_watch.unwatch(run)
    got = run.logs[0]
    delta = math.sqrt(float((w1 - w0).pow(2).sum() + (b1 - b0).pow(2).sum()))
    after = math.sqrt(float(w1.pow(2).sum() + b1.pow(2).sum()))
    assert close(got["weight_norm/root"], after, rel=1e-6)
    assert close(got["update_ratio/root"], delta / after, rel=1e-5)
    assert got["lr"] == 0.5


def test_lr_of_each_param_group(run):
    model = mlp()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.1},
                           {"params": model[2].parameters(), "lr": 0.01},
                           {"params": model[4].parameters()}], lr=0.001)
    watch(run, model, opt)
    one_step(model, torch.randn(2, 5), opt)
    _torch_watch.unwatch(run)
    got = run.logs[0]
    assert got["lr"] == 0.1
    assert (got["lr/0"], got["lr/1"], got["lr/2"]) == (0.1, 0.01, 0.001)


def test_every_n_logs_steps_0_n_2n_and_counts_optimizer_steps(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    w = watch(run, model, opt, every=3)
    for _ in range(7):
        one_step(model, torch.randn(4, 5), opt)
    assert w.step == 7
    _torch_watch.unwatch(run)
    assert sorted(run.logs) == [0, 3, 6]
    assert all("grad_norm/0" in run.logs[s] and "act_mean/1" in run.logs[s] for s in (0, 3, 6))


def test_without_optimizer_steps_are_training_forwards(run):
    model = mlp()
    w = watch(run, model, every=2)
    for _ in range(5):
        one_step(model, torch.randn(4, 5))
    assert w.step == 4  # forwards 0..4
    _torch_watch.unwatch(run)  # logs the pending step 4
    assert sorted(run.logs) == [0, 2, 4]
    assert "grad_norm" in run.logs[4] and "update_ratio/0" not in run.logs[4]


def test_gradient_accumulation_pools_the_step(run):
    model = Identity4(nn.ReLU())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    watch(run, model, opt)
    a = torch.tensor([[1.0, -1.0, 0.0, 2.0]])
    b = torch.tensor([[-3.0, 5.0, 4.0, 0.0], [1.0, 1.0, 1.0, -1.0]])
    opt.zero_grad()
    model(a).sum().backward()
    model(b).sum().backward()
    grad = float(model.fc.weight.grad.norm())
    opt.step()
    _torch_watch.unwatch(run)
    got = run.logs[0]
    both = torch.cat([a, b]).double()
    assert got["input/min"] == -3.0 and got["input/max"] == 5.0
    assert close(got["input/mean"], float(both.mean()))
    assert close(got["input/std"], float(both.std(unbiased=False)))
    assert got["act_zero_frac/act"] == 5 / 12
    assert close(got["grad_norm"], grad)


def test_module_called_twice_is_pooled_over_its_calls(run):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4, bias=False)
            with torch.no_grad():
                self.fc.weight.copy_(torch.eye(4))
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(self.act(x) - 1.0))

    model = Twice()
    x = torch.tensor([[0.5, -1.0, 2.0, 3.0], [1.5, 0.0, -2.0, 1.0]])
    watch(run, model)
    one_step(model, x)
    _torch_watch.unwatch(run)
    first = torch.relu(x)
    second = torch.relu(first - 1.0)
    both = torch.cat([first.flatten(), second.flatten()]).double()
    got = run.logs[0]
    assert got["act_zero_frac/act"] == float((both == 0).double().mean())
    assert close(got["act_mean/act"], float(both.mean()))
    assert close(got["act_std/act"], float(both.std(unbiased=False)))


def test_functional_activations_are_caught_and_not_counted_twice(run):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return torch.sigmoid(self.fc(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.block = Block()
            self.relu = nn.ReLU()

        def forward(self, x):
            x = F.relu(self.fc(x))
            x = self.relu(x.tanh() + x)
            return self.block(x).relu()

    model = Net()
    x = torch.randn(5, 3)
    watch(run, model)
    one_step(model, x)
    _torch_watch.unwatch(run)
    got = run.logs[0]
    acts = sorted(k.split("/", 1)[1] for k in got if k.startswith("act_mean/"))
    assert acts == ["F.relu.0", "F.relu.1", "F.tanh.0", "block.F.sigmoid.0", "relu"]
    with torch.no_grad():
        h = F.relu(model.fc(x))
    assert got["act_zero_frac/F.relu.0"] == int((h == 0).sum()) / h.numel()
    assert close(got["act_mean/F.tanh.0"], float(h.tanh().double().mean()), rel=1e-5)


def test_integer_inputs_have_no_input_statistics(run):
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    watch(run, model)
    one_step(model, torch.randint(0, 10, (5, 3)))
    _torch_watch.unwatch(run)
    got = run.logs[0]
    assert not any(k.startswith("input/") for k in got)
    assert "grad_norm/0" in got and "weight_norm/0" in got


def test_grad_scaler_norms_are_unscaled(run):
    try:
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    except Exception as exc:  # noqa: BLE001 - builds without a CPU GradScaler
        pytest.skip(f"no CPU GradScaler: {exc}")
    if not scaler.is_enabled():
        pytest.skip("the CPU GradScaler is disabled in this build")
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    watch(run, model, opt, scaler=scaler)
    x, target = torch.randn(8, 5), torch.randn(8, 3)
    opt.zero_grad()
    scaler.scale(F.mse_loss(model(x), target)).backward()
    scaled = float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))
    scaler.step(opt)
    scaler.update()
    _torch_watch.unwatch(run)
    assert close(run.logs[0]["grad_norm"], scaled / 1024.0, rel=1e-5)


def test_autocast_bfloat16_activations(run):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(16, 5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model[1](model[0](x))  # what the logged forward will see
    watch(run, model, opt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    opt.zero_grad()
    out.float().sum().backward()
    opt.step()
    _torch_watch.unwatch(run)
    got = run.logs[0]
    assert hidden.dtype == torch.bfloat16
    assert got["act_zero_frac/1"] == int((hidden == 0).sum()) / hidden.numel()
    assert close(got["act_mean/1"], float(hidden.double().mean()), rel=1e-3)
    assert all(math.isfinite(v) for v in got.values())
