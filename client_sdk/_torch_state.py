"""The bookkeeping of one watched model: its layout, the update-ratio buffers, what a logged
step collected, how the step's host copy turns back into keys and values, and the queue of
host copies on their way to ``run.log``."""

from __future__ import annotations

import math
import weakref
from collections import deque
from collections.abc import Mapping
from operator import attrgetter, itemgetter
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._torch_stats import (
    ZERO,
    activation_sums,
    copy_,
    frac_key,
    input_sums,
    module_spec,
    moments,
    sub_,
)

#: the name standing for the root module in per-module keys (its dotted name is empty)
ROOT_NAME = "root"

#: the autograd engine (its ``queue_callback`` runs a function when a backward pass ends)
ENGINE = getattr(torch.autograd.Variable, "_execution_engine", None)

#: snapshot buffers up to this size stay allocated between logged steps; larger ones (big
#: models, where one more copy of the weights matters) are allocated on each logged step
KEEP_SNAPSHOT_BYTES = 64 * 2**20


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
        self.updated = tuple(i for i, r in enumerate(self.params) if id(r()) in in_opt)
        self.all_idx = tuple(range(len(self.params)))
        self.weight_keys = ["weight_norm/" + n for n in self.modules]
        self.grad_keys = ["grad_norm/" + n for n in self.modules]
        self.ratio_keys = ["update_ratio/" + n for n in self.modules]
        self._act_keys: dict[tuple, tuple] = {}
        self._groups: dict[tuple, list] = {}

    def live(self) -> list[Tensor | None]:
        return [r() for r in self.params]

    def act_keys(self, prefix: str, name: str, spec: tuple) -> tuple:
        """``(act_mean key, act_std key, fraction key or None, whether the fraction counts
        zeros)`` of an activation (cached)."""
        keys = self._act_keys.get((prefix, name, spec))
        if keys is None:
            frac = frac_key(spec)
            keys = self._act_keys[(prefix, name, spec)] = (
                f"{prefix}act_mean/{name}", f"{prefix}act_std/{name}",
                f"{prefix}{frac}/{name}" if frac else None, spec[0] == ZERO)
        return keys

    def groups(self, idx: tuple[int, ...], keys: list[str]) -> list[tuple[str, Callable]]:
        """``(keys[module], pick)`` per module of the parameters ``idx``: ``pick(values)`` is
        the tuple of that module's values among ``values`` (one per parameter of ``idx``);
        cached per ``idx`` and key list."""
        groups = self._groups.get((idx, id(keys)))
        if groups is None:
            by_module: dict[int, list[int]] = {}
            for pos, i in enumerate(idx):
                by_module.setdefault(self.owner[i], []).append(pos)
            if len(self._groups) > 16:
                self._groups.clear()
            groups = self._groups[(idx, id(keys))] = [
                (keys[m], _picker(p)) for m, p in by_module.items()]
        return groups

    def live_idx(self, params: list[Tensor | None]) -> tuple[int, ...]:
        """The indexes of the parameters still alive in ``params`` (from :meth:`live`)."""
        for p in params:
            if p is None:
                return tuple(i for i, p in enumerate(params) if p is not None)
        return self.all_idx


class Snapshot:
    """The updated parameters (``idx``) before one optimizer step, copied into flat buffers,
    one per device and dtype, kept between logged steps (up to ``KEEP_SNAPSHOT_BYTES``).

    :meth:`take` copies the parameters in (one ``_foreach_copy_`` per buffer); after the step
    :meth:`deltas` turns the buffers into ``w_before - w_after`` in place and returns their
    per-module slices, whose norms are the update sizes; ``ratio_plan`` says, for each
    module, which slices and which parameters are its own."""

    def __init__(self, idx: tuple[int, ...], params: list[Tensor], owner: list[int],
                 keys: list[str]) -> None:
        self.idx = idx
        self._layout = [(p.shape, p.dtype, p.device) for p in params]
        by_kind: dict[tuple, list[int]] = {}
        for j, p in enumerate(params):
            by_kind.setdefault((p.device, p.dtype), []).append(j)
        self._kinds = [(device, dtype, js) for (device, dtype), js in by_kind.items()]
        self._single = len(self._kinds) == 1
        nbytes = sum(p.numel() * p.element_size() for p in params)
        self.keep = nbytes <= KEEP_SNAPSHOT_BYTES
        # each buffer is cut into slices, one per run of consecutive parameters of one module
        seg_modules: list[int] = []
        self._cuts: list[list[tuple[int, int]]] = []
        for _, _, js in self._kinds:
            cuts, start, end = [], 0, 0
            for k, j in enumerate(js):
                end += params[j].numel()
                last = k + 1 == len(js) or owner[idx[js[k + 1]]] != owner[idx[j]]
                if last:
                    cuts.append((start, end))
                    seg_modules.append(owner[idx[j]])
                    start = end
            self._cuts.append(cuts)
        members: dict[int, tuple[list[int], list[int]]] = {}
        for seg, m in enumerate(seg_modules):
            members.setdefault(m, ([], []))[0].append(seg)
        for i in idx:
            members[owner[i]][1].append(i)
        #: per module: (its ``update_ratio`` key, picks of its slices among :meth:`deltas`
        #: and of its weight norms among all parameters'), for ``Record.decode``
        self.ratio_plan = [(keys[m], _picker(s), _picker(p)) for m, (s, p) in members.items()]
        self._bufs: list | None = None

    def matches(self, params: list[Tensor | None]) -> bool:
        """Whether ``params`` (all parameters, from ``Layers.live``) still fit the buffers."""
        for i, (shape, dtype, device) in zip(self.idx, self._layout):
            p = params[i]
            if p is None or p.dtype is not dtype or p.shape != shape or p.device != device:
                return False
        return True

    def _buffers(self) -> list:
        bufs = self._bufs
        if bufs is None:
            bufs = []
            for (device, dtype, js), cuts in zip(self._kinds, self._cuts):
                shapes = [self._layout[j][0] for j in js]
                buf = torch.empty(cuts[-1][1], dtype=dtype, device=device)
                views, pos = [], 0
                for shape in shapes:
                    n = shape.numel()
                    views.append(buf[pos:pos + n].view(shape))
                    pos += n
                bufs.append((views, [buf[a:b] for a, b in cuts]))
            if self.keep:
                self._bufs = bufs
        return bufs

    def _by_kind(self, params: list[Tensor | None]):
        mine = [params[i] for i in self.idx]
        if self._single:
            return (mine,)
        return tuple([mine[j] for j in js] for _, _, js in self._kinds)

    def take(self, params: list[Tensor | None]) -> list:
        """Copy the parameters in (autograd off); returns the buffers for :meth:`deltas`."""
        bufs = self._bufs or self._buffers()
        if self._single:
            copy_(bufs[0][0], [params[i] for i in self.idx])
        else:
            for (views, _), group in zip(bufs, self._by_kind(params)):
                copy_(views, group)
        return bufs

    def deltas(self, bufs: list, params: list[Tensor | None]) -> list[Tensor]:
        """``w_before - w_after`` per module slice (autograd off), in the order the pickers of
        :attr:`ratio_plan` expect."""
        if self._single:
            sub_(bufs[0][0], [params[i] for i in self.idx])
            return bufs[0][1]
        out: list[Tensor] = []
        for (views, segs), group in zip(bufs, self._by_kind(params)):
            sub_(views, group)
            out += segs
        return out


class StepStats:
    """What the forwards and backwards of one logged step collected (0-d device tensors).

    A module (or input) seen several times keeps each call's tensors; :meth:`Record.decode`
    pools them on the host."""

    __slots__ = ("step", "n_in", "inputs", "acts", "grads", "backward_seen")

    def __init__(self, step: int) -> None:
        self.step = step
        self.backward_seen = False
        self.n_in: list[int] = []
        self.inputs: list[Tensor] = []
        #: name -> [spec, [numel of each call], [tensors of every call]]
        self.acts: dict[str, list] = {}
        #: (parameter indexes, their gradient norms, the loss scale or None)
        self.grads: tuple | None = None

    def add_input(self, x: Tensor) -> None:
        self.inputs += input_sums(x)
        self.n_in.append(x.numel())

    def add_act(self, name: str, spec: tuple, out: Tensor) -> None:
        s = activation_sums(out, spec)
        prev = self.acts.get(name)
        if prev is None:
            self.acts[name] = [spec, [out.numel()], s]
        else:  # a module (or functional call site) run twice in one step: pooled exactly
            prev[1].append(out.numel())
            prev[2] += s


class Record:
    """One logged step on its way to the host: ``tensors`` (0-d, stacked and copied once)
    and the plan that turns their values into ``{key: value}`` (see :meth:`decode`)."""

    __slots__ = ("step", "prefix", "tensors", "plan", "extras")

    def __init__(self, step: int, prefix: str) -> None:
        self.step = step
        self.prefix = prefix
        self.tensors: list[Tensor] = []
        self.plan: list[tuple] = []
        self.extras: dict[str, float] = {}

    def add(self, what: str, tensors: list[Tensor], a: Any = None, b: Any = None) -> None:
        """Append ``tensors`` and how to decode them: ``what`` (one of the kinds of
        :meth:`decode`) with its two arguments."""
        self.plan.append((what, len(tensors), a, b))
        self.tensors += tensors

    def add_stats(self, stats: StepStats, layers: Layers, key_prefix: str = "") -> None:
        if stats.inputs:
            self.add("input", stats.inputs, _INPUT_KEYS[key_prefix], stats.n_in)
        for name, (spec, ns, sums) in stats.acts.items():
            self.add("act", sums, layers.act_keys(key_prefix, name, spec), ns)

    def add_lr(self, optimizer: Any) -> None:
        """The learning rate of each param group (see ``docs/signals.md``)."""
        groups = optimizer.param_groups
        lr = groups[0].get("lr") if len(groups) == 1 else None
        if type(lr) is float:  # the common case: one group, a float LR
            self.extras["lr"] = lr
            return
        lrs = [g.get("lr") for g in groups]
        keys = ["lr"] + ([f"lr/{i}" for i in range(len(lrs))] if len(lrs) > 1 else [])
        values = lrs[:1] + (lrs if len(lrs) > 1 else [])
        tensor_keys, tensors = [], []
        for key, lr in zip(keys, values):
            if isinstance(lr, Tensor):
                tensor_keys.append(key)
                tensors.append(lr.detach().reshape(()))
            elif isinstance(lr, (int, float)):
                self.extras[key] = float(lr)
        if tensors:
            self.add("lr", tensors, tensor_keys)

    def decode(self, values: list[float]) -> dict[str, float]:
        """The step's ``{key: value}`` from the values of :attr:`tensors`, by kind:
        ``weights`` ((key, pick) per module, parameter indexes), ``ratio`` (the snapshot's
        ``ratio_plan``), ``grads`` ((key, pick) per module, loss scale: a float, None, or
        ``TENSOR_SCALE`` when it is the last tensor), ``input`` (keys, sizes), ``act``
        (keys and kind, sizes), ``lr`` (keys)."""
        out = self.extras
        hypot = math.hypot
        weights: list[float] = []
        weight_idx: tuple[int, ...] = ()
        pos = 0
        for what, count, a, b in self.plan:
            v = values[pos:pos + count]
            pos += count
            if what == "act":
                k_mean, k_std, k_frac, zero = a
                n = b[0]
                if len(b) > 1:  # pooled over calls: [sum, norm(, count)] per call
                    n, width = sum(b), count // len(b)
                    v = [sum(v[0::width]), hypot(*v[1::width])] + (
                        [sum(v[2::width])] if width > 2 else [])
                out[k_mean], out[k_std] = moments(n, v[0], v[1])
                if k_frac is not None:
                    out[k_frac] = (n - v[2]) / n if zero else v[2] / n
            elif what == "weights":
                weights, weight_idx = v, b
                for key, pick in a:
                    out[key] = hypot(*pick(v))
            elif what == "ratio":
                if weight_idx is not b:  # some parameters are gone: index by parameter
                    where = dict(zip(weight_idx, weights))
                    weights = [where.get(i, math.nan) for i in b]
                for key, segs, members in a:
                    d = hypot(*segs(v))
                    w = hypot(*members(weights))
                    out[key] = d / w if w else (math.inf if d else math.nan)
            elif what == "grads":
                if b is TENSOR_SCALE:
                    b = v.pop()
                if b and b != 1.0:
                    inv = 1.0 / b
                    v = [g * inv for g in v]
                for key, pick in a:
                    out[key] = hypot(*pick(v))
                total = hypot(*v)
                out["grad_norm"] = total
                out["grad_nonfinite"] = 0.0 if math.isfinite(total) else 1.0
            elif what == "input":
                _decode_input(out, v, a, b)
            elif what == "lr":
                out.update(zip(a, v))
        if self.prefix:
            out = {self.prefix + k: x for k, x in out.items()}
        return out


#: ``Record.add("grads", ...)``: the loss scale is the last of the tensors
TENSOR_SCALE = "tensor"


def _picker(positions: list[int]) -> Callable:
    """``values -> tuple of values[p] for p in positions`` (an ``itemgetter``)."""
    if len(positions) == 1:
        p = positions[0]
        return lambda v: (v[p],)
    return itemgetter(*positions)


def _decode_input(out: dict, v: list[float], keys: tuple[str, ...], ns: list[int]) -> None:
    n = ns[0]
    if len(ns) > 1:  # [sum, norm, min, max] per forward
        n = sum(ns)
        v = [sum(v[0::4]), math.hypot(*v[1::4]), min(v[2::4]), max(v[3::4])]
    k_mean, k_std, k_min, k_max = keys
    out[k_mean], out[k_std] = moments(n, v[0], v[1])
    out[k_min] = v[2]
    out[k_max] = v[3]


_INPUT_KEYS = {p: tuple(f"{p}input/{s}" for s in ("mean", "std", "min", "max"))
               for p in ("", "eval/")}


#: logged steps whose host copy may still be in flight before the oldest is waited for
MAX_IN_FLIGHT = 64

_IS_CPU = attrgetter("is_cpu")


class Outbox:
    """Records on their way to ``log(values, step=)``: :meth:`emit` starts a record's one
    copy to the host (its tensors stacked into one; from CUDA a ``non_blocking`` copy and an
    event), :meth:`drain` logs the records whose copy is done, oldest first. A record whose
    tensors are all on the CPU needs no copy: it is read in place and logged at once.
    ``inflight`` is the queue; errors go to ``on_error``, never to the caller."""

    def __init__(self, log: Callable, on_error: Callable[[BaseException], None]) -> None:
        self.inflight: deque = deque()
        self._log_fn = log
        self._on_error = on_error

    def emit(self, rec: Record) -> None:
        """Start the one copy of the record's tensors to the host (stacked into one tensor);
        tensors that are all on the CPU are read in place and logged at once."""
        host, event = None, None
        tensors, rec.tensors = rec.tensors, []
        if tensors:
            if not self.inflight and all(map(_IS_CPU, tensors)):
                self._log(rec, [t.item() for t in tensors])  # no device: nothing to copy
                return
            try:
                flat = torch.stack(tensors)
            except RuntimeError:  # a model spread over devices: gather on the first one
                home = tensors[0].device
                flat = torch.stack([t.to(home, non_blocking=True) for t in tensors])
            if flat.is_cuda:
                host = flat.to("cpu", non_blocking=True)
                event = torch.cuda.Event()
                event.record()
            else:
                host = flat.to("cpu")
        self.inflight.append((rec, host, event))
        self.drain(len(self.inflight) > MAX_IN_FLIGHT)

    def _log(self, rec: Record, values: list[float]) -> None:
        try:
            self._log_fn(rec.decode(values), step=rec.step)
        except Exception as exc:  # noqa: BLE001 - a failing sink never reaches training
            self._on_error(exc)

    def drain(self, block: bool) -> None:
        """Log every record whose copy is done, oldest first (``block``: wait for the
        oldest)."""
        while self.inflight:
            rec, host, event = self.inflight[0]
            if event is not None and not event.query():
                if not block:
                    return
                event.synchronize()
            self.inflight.popleft()
            block = False
            self._log(rec, host.tolist() if host is not None else [])


def first_tensor(args: tuple, kwargs: Mapping) -> Tensor | None:
    if args and isinstance(args[0], Tensor):
        return args[0]
    for v in (*args, *kwargs.values()):
        if isinstance(v, Tensor):
            return v
    return None


def out_tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output] if output.requires_grad else []
    items = output.values() if isinstance(output, Mapping) else (
        output if isinstance(output, (tuple, list)) else (output,))
    return [t for t in items if isinstance(t, Tensor) and t.requires_grad]


class BackwardTrigger:
    """A hook on the output tensors' nodes, or on one parameter after its gradient is
    accumulated: its first call in a backward pass queues ``callback`` to run when the
    autograd engine finishes that pass (all ``.grad`` written). One per watch, re-armed by
    each logged forward."""

    __slots__ = ("callback", "armed")

    def __init__(self, callback) -> None:
        self.callback = callback
        self.armed = True

    def __call__(self, _arg: Any) -> None:
        if self.armed:
            self.armed = False
            ENGINE.queue_callback(self._fire)

    def _fire(self) -> None:
        self.armed = True
        self.callback()
