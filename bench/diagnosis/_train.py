"""Train one benchmark run and record its signals under the keys of docs/signals.md.

A small self-contained recorder: batch loss, `val/loss`, `lr`, and on every `layer_every`-th
step the layer signals (`grad_norm`, `grad_norm/<m>`, `grad_nonfinite`, `weight_norm/<m>`,
`update_ratio/<m>`, `act_zero_frac/<m>`, `act_sat_frac/<m>`, `input/mean`, `input/std`).
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import _zoo
import numpy as np
import torch
from torch import nn

SAT_MARGIN = 0.02  # an output within 2% of its range from a bound counts as saturated


@dataclass
class Spec:
    """Everything that defines one run, its fault and its labels."""

    name: str
    family: str
    seed: int
    data: str = "digits"
    data_kw: dict = field(default_factory=dict)
    model: str = "mlp"
    model_kw: dict = field(default_factory=dict)
    init: str | None = None
    opt: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    bs: int = 32
    steps: int = 1500
    schedule: Callable[[int], float] | None = None
    frozen: bool = False
    head_lr_mult: float | None = None  # the output layer in its own group at lr x this
    log_every: int = 1
    layer_every: int = 10
    eval_every: int = 50
    jitter: bool = False
    nan_batch_at: int | None = None  # a corrupt batch (one NaN feature) at this step
    corrupt_from: int | None = None  # from this step, every 7th batch is scaled x1000
    must: tuple[str, ...] = ()
    may: tuple[str, ...] = ()
    onset: int | None = None


BIG_LOGIT_STD = 10.0  # "big_last": the head scaled so the initial logits have this std


def _apply_init(model: nn.Module, how: str | None, x: torch.Tensor | None = None) -> None:
    if how is None:
        return
    with torch.no_grad():
        if how == "big_last" and x is not None:
            # scale to a fixed logit spread, not by a fixed factor: x25 gave first losses
            # of only 1.2-1.4x ln(C) on some seeds (a fault that did not show)
            model.eval()
            logits = model(x)
            model.train()
            std = float((logits - logits.mean(dim=1, keepdim=True)).std())
            model.out.weight.mul_(BIG_LOGIT_STD / max(std, 1e-6))
            return
        if how == "zero":
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    m.weight.zero_()
                    m.bias.zero_()
        elif how == "big_last":
            model.out.weight.mul_(25.0)
        elif how == "big_bias":
            model.out.bias.copy_(torch.linspace(-8.0, 8.0, model.out.bias.numel()))
        elif how == "big_all":
            for m in model.modules():
                if isinstance(m, nn.Linear) and m is not model.out:
                    m.weight.mul_(6.0)
        elif how.startswith("big_recurrent"):
            model.rnn.weight_hh_l0.mul_(float(how.split(":")[1]) if ":" in how else 4.0)
        elif how == "neg_bias":
            for m in model.modules():
                if isinstance(m, nn.Linear) and m is not model.out:
                    m.bias.fill_(-4.0)
        else:
            raise ValueError(how)


class Recorder:
    """Collects (step, value) pairs per key; hooks activations on layer steps only."""

    def __init__(self, model: nn.Module):
        self.points: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
        self.active = False
        self.step = 0
        self.param_modules = [(n, m) for n, m in model.named_modules()
                              if n and any(True for _ in m.parameters(recurse=False))]
        for name, module in model.named_modules():
            if isinstance(module, (nn.ReLU, nn.Sigmoid, nn.Tanh)):
                module.register_forward_hook(self._act_hook(name, module))

    def log(self, key: str, value: float, step: int | None = None) -> None:
        steps, values = self.points[key]
        steps.append(self.step if step is None else step)
        values.append(float(value))

    def _act_hook(self, name: str, module: nn.Module):
        def hook(_mod, _inp, out):
            if not self.active:
                return
            out = out.detach()
            if isinstance(module, nn.ReLU):
                self.log(f"act_zero_frac/{name}", (out == 0).float().mean().item())
            else:
                lo = 0.0 if isinstance(module, nn.Sigmoid) else -1.0
                span = 1.0 - lo
                sat = (out < lo + SAT_MARGIN * span) | (out > 1.0 - SAT_MARGIN * span)
                self.log(f"act_sat_frac/{name}", sat.float().mean().item())
        return hook

    def grads(self) -> None:
        total = 0.0
        nonfinite = 0.0
        for name, module in self.param_modules:
            g = [p.grad.detach().double() for p in module.parameters(recurse=False)
                 if p.grad is not None]
            norm = math.sqrt(sum(float((t * t).sum()) for t in g)) if g else 0.0
            if not math.isfinite(norm):
                nonfinite = 1.0
            total += norm * norm
            self.log(f"grad_norm/{name}", norm)
        self.log("grad_norm", math.sqrt(total))
        self.log("grad_nonfinite", nonfinite)

    def snapshot(self) -> list[list[torch.Tensor]]:
        return [[p.detach().clone() for p in m.parameters(recurse=False)]
                for _, m in self.param_modules]

    def updates(self, before: list[list[torch.Tensor]]) -> None:
        for (name, module), old in zip(self.param_modules, before, strict=True):
            new = list(module.parameters(recurse=False))
            w = math.sqrt(sum(float((o.double() ** 2).sum()) for o in old))
            dw = math.sqrt(sum(float(((n.detach() - o).double() ** 2).sum())
                               for n, o in zip(new, old, strict=True)))
            self.log(f"weight_norm/{name}", w)
            if w > 0:
                self.log(f"update_ratio/{name}", dw / w)


def _lr_at(spec: Spec, step: int) -> float:
    return spec.lr * (spec.schedule(step) if spec.schedule else 1.0)


def run(spec: Spec) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """Train `spec`; return {key: (steps, values)} and the run's config."""
    torch.manual_seed(spec.seed)
    data = _zoo.load(spec.data, spec.seed, **spec.data_kw)
    model = _zoo.build(spec.model, data, **spec.model_kw)
    _apply_init(model, spec.init, data.x_train[:256])
    params = copy.deepcopy(model).parameters() if spec.frozen else model.parameters()
    if spec.head_lr_mult is not None:
        head = set(map(id, model.out.parameters()))
        params = [{"params": [p for p in model.parameters() if id(p) not in head]},
                  {"params": list(model.out.parameters()), "mult": spec.head_lr_mult}]
    if spec.opt == "sgd":
        opt = torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                              weight_decay=spec.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    rec = Recorder(model)
    gen = torch.Generator().manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed + 7)
    n = len(data.x_train)
    order = torch.randperm(n, generator=gen)
    pos = 0
    for step in range(spec.steps):
        rec.step = step
        skip = spec.jitter and rng.random() < 0.3  # irregular logging
        layer_step = step % spec.layer_every == 0 and not skip
        log_step = step % spec.log_every == 0 and not skip
        for group in opt.param_groups:
            group["lr"] = _lr_at(spec, step) * group.get("mult", 1.0)
        if pos + spec.bs > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + spec.bs]
        pos += spec.bs
        x, y = data.x_train[idx], data.y_train[idx]
        if spec.corrupt_from is not None and step >= spec.corrupt_from and step % 7 == 3:
            x = x * 1000.0
        if step == spec.nan_batch_at:
            x = x.clone()
            x[0, 0] = float("nan")
        model.train()
        rec.active = layer_step
        out = model(x)
        rec.active = False
        loss = loss_fn(out, y)
        opt.zero_grad(set_to_none=False)
        model.zero_grad(set_to_none=False)
        loss.backward()
        if log_step:
            rec.log("loss", loss.item())
            rec.log("lr", opt.param_groups[0]["lr"])
        if layer_step:
            rec.grads()
            if x.is_floating_point():
                rec.log("input/mean", x.mean().item())
                rec.log("input/std", x.std().item())
            before = rec.snapshot()
        opt.step()
        if layer_step:
            rec.updates(before)
        if step % spec.eval_every == 0 or step == spec.steps - 1:
            model.eval()
            with torch.no_grad():
                rec.log("val/loss", loss_fn(model(data.x_val), data.y_val).item())
    series = {k: (np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
              for k, (s, v) in rec.points.items()}
    config = {"n_classes": data.n_classes, "batch_size": spec.bs, "lr": spec.lr,
              "loss": "cross_entropy", "optimizer": spec.opt, "total_steps": spec.steps,
              "model": spec.model, "dataset": spec.data}
    return series, config
