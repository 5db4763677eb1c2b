"""Statistics behind ``watch(model)``: computed on the tensors' own device, never synced.

The device side only reduces (sums, L2 norms, counts, min/max: 0-d tensors, never an
``.item()`` on an accelerator); the watcher stacks a logged step's tensors into one, copies it
to the host once (tensors already on the CPU are read in place: there is nothing to copy), and
derives means, stds and fractions there from the floats (:func:`moments`). A module called
several times in one step is pooled there too (sums and counts add, norms combine as
``hypot``), so pooling costs no device work.

Activation kinds (``spec`` tuples, chosen once per module or functional call):

- ``(ZERO, nonneg)``: rectifiers whose output is exactly 0 on a whole input range (ReLU,
  ReLU6, Hardswish; ``nonneg`` when no output is negative); the statistic is the fraction of
  outputs exactly zero.
- ``(SAT, centre, half_width, margin)``: bounded activations; the statistic is the fraction of
  outputs within ``margin`` of either bound (``|y - centre| >= half_width - margin``).
- ``(PLAIN,)``: everything else (GELU, SiLU, ELU, LeakyReLU, ...): mean and std only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: sigmoid outputs below 0.01 or above 0.99 count as saturated: the pre-activation is beyond
#: about +-4.6 and the local gradient is under 4% of its peak (0.25)
SIGMOID_MARGIN = 0.01
#: tanh outputs within 0.01 of -1 or +1 count as saturated: |pre-activation| > about 2.65,
#: local gradient under 2% of its peak (1)
TANH_MARGIN = 0.01

F32 = torch.float32

_vector_norm = torch.linalg.vector_norm
_is_grad_enabled = torch.is_grad_enabled
_set_grad_enabled = getattr(torch._C, "_set_grad_enabled", torch.set_grad_enabled)
_HALF = (torch.float16, torch.bfloat16)

ZERO = "zero"
SAT = "sat"
PLAIN = "plain"

Spec = tuple

SIGMOID_SPEC: Spec = (SAT, 0.5, 0.5, SIGMOID_MARGIN)
TANH_SPEC: Spec = (SAT, 0.0, 1.0, TANH_MARGIN)
ZERO_SPEC: Spec = (ZERO, True)
HARDSWISH_SPEC: Spec = (ZERO, False)
PLAIN_SPEC: Spec = (PLAIN,)

# Order matters: ReLU6 subclasses Hardtanh and must be seen as a rectifier first.
_MODULE_SPECS: tuple[tuple[type, Spec], ...] = (
    (nn.ReLU, ZERO_SPEC),
    (nn.ReLU6, ZERO_SPEC),
    (nn.Hardswish, HARDSWISH_SPEC),
    (nn.Sigmoid, SIGMOID_SPEC),
    (nn.Tanh, TANH_SPEC),
    (nn.Hardsigmoid, (SAT, 0.5, 0.5, 0.0)),
    (nn.Softsign, (SAT, 0.0, 1.0, TANH_MARGIN)),
    (nn.LeakyReLU, PLAIN_SPEC),
    (nn.PReLU, PLAIN_SPEC),
    (nn.RReLU, PLAIN_SPEC),
    (nn.ELU, PLAIN_SPEC),
    (nn.CELU, PLAIN_SPEC),
    (nn.SELU, PLAIN_SPEC),
    (nn.GELU, PLAIN_SPEC),
    (nn.SiLU, PLAIN_SPEC),
    (nn.Mish, PLAIN_SPEC),
    (nn.Softplus, PLAIN_SPEC),
    (nn.LogSigmoid, PLAIN_SPEC),
    (nn.Tanhshrink, PLAIN_SPEC),
)

#: functional activations caught during a logged forward, by the called function's
#: ``__name__`` (``F.relu``, ``torch.relu``, ``x.relu()`` and ``x.relu_()`` all land here)
FUNCTIONAL_SPECS: dict[str, Spec] = {
    "relu": ZERO_SPEC,
    "relu_": ZERO_SPEC,
    "relu6": ZERO_SPEC,
    "hardswish": HARDSWISH_SPEC,
    "hardswish_": HARDSWISH_SPEC,
    "sigmoid": SIGMOID_SPEC,
    "sigmoid_": SIGMOID_SPEC,
    "tanh": TANH_SPEC,
    "tanh_": TANH_SPEC,
    "hardsigmoid": (SAT, 0.5, 0.5, 0.0),
    "softsign": (SAT, 0.0, 1.0, TANH_MARGIN),
    "gelu": PLAIN_SPEC,
    "silu": PLAIN_SPEC,
    "mish": PLAIN_SPEC,
    "elu": PLAIN_SPEC,
    "elu_": PLAIN_SPEC,
    "selu": PLAIN_SPEC,
    "celu": PLAIN_SPEC,
    "leaky_relu": PLAIN_SPEC,
    "leaky_relu_": PLAIN_SPEC,
    "softplus": PLAIN_SPEC,
}


def module_spec(module: nn.Module) -> Spec | None:
    """The activation kind of an ``nn`` activation module, or None for any other module."""
    if isinstance(module, nn.Hardtanh) and not isinstance(module, nn.ReLU6):
        lo, hi = float(module.min_val), float(module.max_val)
        return (SAT, (lo + hi) / 2, (hi - lo) / 2, 0.0)
    for cls, spec in _MODULE_SPECS:
        if isinstance(module, cls):
            return spec
    return None


def frac_key(spec: Spec) -> str | None:
    """The key prefix of the kind's fraction statistic (None when it has none)."""
    if spec[0] == ZERO:
        return "act_zero_frac"
    if spec[0] == SAT:
        return "act_sat_frac"
    return None


def activation_sums(out: Tensor, spec: Spec) -> list[Tensor]:
    """``[sum, L2 norm]`` of an activation output, plus for ZERO kinds the count of non-zero
    outputs and for SAT kinds the count of saturated ones: 0-d tensors (float32 for half
    precision outputs, else the output's dtype)."""
    x = out
    dt = F32 if x.dtype in _HALF else None  # half precision: accumulate in float32
    prev = _is_grad_enabled()  # autograd off: cheaper than x.detach()
    if prev:
        _set_grad_enabled(False)
    try:
        sums = [x.sum(dtype=dt), _vector_norm(x, dtype=dt)]
        if spec[0] == ZERO:  # |sign| is 0 or 1 (NaN stays NaN); cheaper than count_nonzero
            sign = x.sign() if spec[1] else x.sign().abs_()
            sums.append(sign.sum(dtype=dt))
        elif spec[0] == SAT:
            _, centre, half, margin = spec
            dist = x.abs() if centre == 0 else x.sub(centre).abs_()
            sums.append(dist.ge_(half - margin).sum(dtype=dt))
    finally:
        if prev:
            _set_grad_enabled(True)
    return sums


def input_sums(x: Tensor) -> list[Tensor]:
    """``[sum, L2 norm, min, max]`` of an input batch (0-d tensors, float32 for half
    precision inputs)."""
    if x.requires_grad:
        x = x.detach()
    lo, hi = torch.aminmax(x)
    if x.dtype in _HALF:  # accumulate in float32
        return [x.sum(dtype=F32), _vector_norm(x, dtype=F32), lo.float(), hi.float()]
    return [x.sum(), _vector_norm(x), lo, hi]


def moments(n: int, total: float, norm: float) -> tuple[float, float]:
    """Mean and population std of ``n`` values from their sum and L2 norm (host floats).

    One pass in float32 on the device: the std loses precision only when it is below about
    1e-3 of the mean's magnitude."""
    mean = total / n
    var = norm * norm / n - mean * mean
    return mean, math.sqrt(var) if var > 0 else (0.0 if var == var else math.nan)


def tensor_norms(tensors: list[Tensor]) -> Sequence[Tensor]:
    """The L2 norm of each tensor, a 0-d tensor on that tensor's device (float32 for half
    precision tensors, else the tensor's dtype).

    Groups by device and dtype and uses ``torch._foreach_norm`` (as ``clip_grad_norm_``
    does), so that a model with hundreds of parameters costs a few kernel launches.
    """
    if not tensors:
        return []
    device, dtype = tensors[0].device, tensors[0].dtype
    for t in tensors:
        if t.dtype is not dtype or t.device != device:
            break
    else:
        return _foreach_norm(tensors, dtype)
    out: list[Tensor | None] = [None] * len(tensors)
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    for (_, dtype), idx in groups.items():
        group = [tensors[i] for i in idx]
        for i, v in zip(idx, _foreach_norm(group, dtype)):
            out[i] = v
    return out  # type: ignore[return-value]


def grad_off() -> bool:
    """Disable autograd recording (cheaper than a ``torch.no_grad()`` block); returns the
    previous mode for :func:`grad_restore`."""
    prev = _is_grad_enabled()
    if prev:
        _set_grad_enabled(False)
    return prev


def grad_restore(prev: bool) -> None:
    if prev:
        _set_grad_enabled(True)


_FOREACH_COPY = getattr(torch, "_foreach_copy_", None)


def copy_(dst: list[Tensor], src: list[Tensor]) -> None:
    """``dst[i].copy_(src[i])`` for all i, in one call where ``torch._foreach_copy_`` exists."""
    if _FOREACH_COPY is not None:
        try:
            _FOREACH_COPY(dst, src)
            return
        except (RuntimeError, TypeError):
            pass
    for x, y in zip(dst, src):
        x.copy_(y)


def sub_(a: list[Tensor], b: list[Tensor]) -> None:
    """``a[i] -= b[i]`` for all i, in one call where ``torch._foreach_sub_`` allows."""
    try:
        torch._foreach_sub_(a, b)
    except (AttributeError, RuntimeError, TypeError):
        for x, y in zip(a, b):
            x.sub_(y)


_FOREACH_NORM = getattr(torch, "_foreach_norm", None)


def _foreach_norm(group: list[Tensor], dtype: torch.dtype) -> Sequence[Tensor]:
    if _FOREACH_NORM is not None:
        try:
            if dtype in _HALF:
                return _FOREACH_NORM(group, 2, dtype=torch.float32)
            return _FOREACH_NORM(group, 2)
        except (RuntimeError, TypeError):
            pass
    return [torch.linalg.vector_norm(t, dtype=torch.float32 if t.dtype in _HALF else None)
            for t in group]
