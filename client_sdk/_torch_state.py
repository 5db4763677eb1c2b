"""The bookkeeping of one watched model: its layout, what a logged step collected, and how
the step's host copy turns back into keys and values."""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ._torch_stats import (
    ZERO,
    activation_sums,
    frac_key,
    input_sums,
    module_spec,
    moments,
    pool_sums,
)

#: the name standing for the root module in per-module keys (its dotted name is empty)
ROOT_NAME = "root"

#: the autograd engine (its ``queue_callback`` runs a function when a backward pass ends)
ENGINE = getattr(torch.autograd.Variable, "_execution_engine", None)


class Layers:
    """The watched model's layout at watch() time, holding parameters by weak reference.

    ``modules``: names of the modules that own trainable parameters (a parameter shared by
    several modules belongs to the first); ``owner[i]``: the module of parameter ``i``;
    ``updated``: the parameters the optimizer updates; ``acts``: id -> (name, spec) of the
    activation modules; ``names``: id -> dotted name of every module."""

    def __init__(self, root: nn.Module, optimizer: Any) -> None:
        named = list(root.named_modules())
        self.names = {id(m): n for n, m in named}
        self.acts = {}
        self.act_modules: list[weakref.ref] = []
        self.modules: list[str] = []
        self.params: list[weakref.ref] = []
        self.owner: list[int] = []
        seen = set()
        for name, m in named:
            spec = module_spec(m)
            if spec is not None:
                self.acts[id(m)] = (name or ROOT_NAME, spec)
                self.act_modules.append(weakref.ref(m))
            own = [p for p in m.parameters(recurse=False) if p.requires_grad and id(p) not in seen]
            if own:
                for p in own:
                    seen.add(id(p))
                    self.params.append(weakref.ref(p))
                    self.owner.append(len(self.modules))
                self.modules.append(name or ROOT_NAME)
        in_opt = set()
        if optimizer is not None:
            in_opt = {id(p) for g in optimizer.param_groups for p in g["params"]}
        self.updated = [i for i, r in enumerate(self.params) if id(r()) in in_opt]
        self.weight_keys = ["weight_norm/" + n for n in self.modules]
        self.grad_keys = ["grad_norm/" + n for n in self.modules]
        self.ratio_keys = ["update_ratio/" + n for n in self.modules]
        self._act_keys: dict[tuple, tuple] = {}
        self._groups: dict[tuple, list] = {}

    def live(self) -> list[Tensor | None]:
        return [r() for r in self.params]

    def act_keys(self, prefix: str, name: str, spec: tuple) -> tuple:
        """``(act_mean key, act_std key, fraction key or None)`` of an activation (cached)."""
        keys = self._act_keys.get((prefix, name, spec))
        if keys is None:
            frac = frac_key(spec)
            keys = self._act_keys[(prefix, name, spec)] = (
                f"{prefix}act_mean/{name}", f"{prefix}act_std/{name}",
                f"{prefix}{frac}/{name}" if frac else None)
        return keys

    def per_module(self, idx: list[int], norms: list[float]) -> list[tuple[int, float]]:
        """Combine the norms of parameters ``idx`` into ``(module, norm)`` pairs: the root
        of the sum of squares (``math.hypot``)."""
        key = tuple(idx)
        groups = self._groups.get(key)
        if groups is None:
            by_module: dict[int, list[int]] = {}
            for pos, i in enumerate(idx):
                by_module.setdefault(self.owner[i], []).append(pos)
            if len(self._groups) > 16:
                self._groups.clear()
            groups = self._groups[key] = [(m, tuple(p)) for m, p in by_module.items()]
        return [(m, math.hypot(*[norms[p] for p in pos])) for m, pos in groups]


class StepStats:
    """What the forwards and backwards of one logged step collected (0-d device tensors)."""

    __slots__ = ("step", "n_in", "inputs", "acts", "grads")

    def __init__(self, step: int) -> None:
        self.step = step
        self.n_in = 0
        self.inputs: list[Tensor] | None = None
        self.acts: dict[str, list] = {}
        #: (parameter indexes, their gradient norms, the loss scale or None)
        self.grads: tuple | None = None

    def add_input(self, x: Tensor) -> None:
        s = input_sums(x)
        self.inputs = s if self.inputs is None else pool_sums(self.inputs, s, minmax=True)
        self.n_in += x.numel()

    def add_act(self, name: str, spec: tuple, out: Tensor) -> None:
        s = activation_sums(out, spec)
        prev = self.acts.get(name)
        if prev is None:
            self.acts[name] = [spec, out.numel(), s]
        else:  # a module (or functional call site) run twice in one step: pooled exactly
            prev[1] += out.numel()
            prev[2] = pool_sums(prev[2], s)


class Record:
    """One logged step on its way to the host: ``tensors`` (0-d, stacked and copied once)
    and the plan that turns their values into ``{key: value}`` (see :meth:`decode`)."""

    def __init__(self, step: int, prefix: str) -> None:
        self.step = step
        self.prefix = prefix
        self.tensors: list[Tensor] = []
        self.plan: list[tuple] = []
        self.extras: dict[str, float] = {}

    def add(self, what: str, tensors: list[Tensor], *meta: Any) -> None:
        self.plan.append((what, len(tensors)) + meta)
        self.tensors.extend(tensors)

    def add_stats(self, stats: StepStats, key_prefix: str = "") -> None:
        if stats.inputs is not None:
            self.add("input", stats.inputs, key_prefix, stats.n_in)
        for name, (spec, n, sums) in stats.acts.items():
            self.add("act", sums, key_prefix, name, spec, n)

    def decode(self, values: list[float], layers: Layers) -> dict[str, float]:
        """The step's ``{key: value}`` from the host copy of :attr:`tensors`."""
        out = dict(self.extras)
        weights: dict[int, float] = {}
        pos = 0
        for what, count, *meta in self.plan:
            v = values[pos:pos + count]
            pos += count
            if what == "act":
                prefix, name, spec, n = meta
                k_mean, k_std, k_frac = layers.act_keys(prefix, name, spec)
                out[k_mean], out[k_std] = moments(n, v[0], v[1])
                if k_frac is not None:
                    out[k_frac] = (n - v[2]) / n if spec[0] == ZERO else v[2] / n
            elif what == "input":
                prefix, n = meta
                mean, std = moments(n, v[0], v[1])
                out.update({prefix + "input/mean": mean, prefix + "input/std": std,
                            prefix + "input/min": v[2], prefix + "input/max": v[3]})
            elif what == "weights":
                weights = dict(zip(meta[0], v))
                for m, norm in layers.per_module(meta[0], v):
                    out[layers.weight_keys[m]] = norm
            elif what == "grads":
                idx, scale = meta
                if scale is None and count > len(idx):  # the loss scale came as a tensor
                    scale = v[-1]
                inv = 1.0 / scale if scale else 1.0
                norms = [g * inv for g in v[:len(idx)]] if inv != 1.0 else v
                for m, norm in layers.per_module(idx, norms):
                    out[layers.grad_keys[m]] = norm
                total = math.hypot(*norms)
                out["grad_norm"] = total
                out["grad_nonfinite"] = 0.0 if math.isfinite(total) else 1.0
            elif what == "ratio":
                idx = meta[0]
                sizes = layers.per_module(idx, [weights.get(i, math.nan) for i in idx])
                for (m, d), (_, w) in zip(layers.per_module(idx, v), sizes):
                    out[layers.ratio_keys[m]] = d / w if w else (math.inf if d else math.nan)
            elif what == "lr":
                out.update(zip(meta[0], v))
        if self.prefix:
            out = {self.prefix + k: x for k, x in out.items()}
        return out


def first_tensor(args: tuple, kwargs: Mapping) -> Tensor | None:
    for v in (*args, *kwargs.values()):
        if isinstance(v, Tensor):
            return v
    return None


def out_tensors(output: Any) -> list[Tensor]:
    items = output.values() if isinstance(output, Mapping) else (
        output if isinstance(output, (tuple, list)) else (output,))
    return [t for t in items if isinstance(t, Tensor) and t.requires_grad]


class BackwardTrigger:
    """A hook on the output tensors: the first gradient to reach them queues ``callback`` to
    run when the autograd engine finishes this backward pass (all ``.grad`` written)."""

    def __init__(self, callback) -> None:
        self.callback = callback
        self.armed = True

    def __call__(self, _grad: Tensor) -> None:
        if self.armed:
            self.armed = False
            ENGINE.queue_callback(self._fire)

    def _fire(self) -> None:
        self.armed = True
        self.callback()
