"""Static model checks run by ``watch(model)``: findings for ``run.report_model_checks``.

Each check looks at the model's structure and its initial weights, never at training data:

- ``output_activation``: the model ends in softmax/sigmoid/ReLU while the loss expects raw
  scores (CrossEntropyLoss, BCEWithLogitsLoss, MultiLabelSoftMarginLoss) or log-probabilities
  (NLLLoss). Needs ``loss_fn=`` (or ``loss`` in the run config): without it, silent.
- ``missing_bias``: a Linear/Conv layer without bias whose next layer is not a normalisation.
- ``symmetric_init``: a weight matrix or kernel whose entries are all equal (e.g. zero init).
- ``small_batch_norm``: batch norm layers with a batch size of at most ``BN_SMALL_BATCH``.

"Next layer" and "ends in" follow the order in which leaf modules ran on the first training
forward when the watcher saw it, else their registration order. The output activation comes
from the output's autograd node when known, so a functional ``torch.sigmoid(logits)`` counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

#: batch norm with a batch of this many samples or fewer gets a warning (batch statistics of
#: so few samples are noisy; Wu & He, Group Normalization, 2018, fig. 1)
BN_SMALL_BATCH = 8
#: ... and a critical finding at this size or below (the statistics are nearly meaningless)
BN_TINY_BATCH = 2
#: beyond this many bias-free layers, one model-wide "info" finding replaces per-layer ones
#: (bias-free projections everywhere is a deliberate design, e.g. in transformers)
MISSING_BIAS_MAX_LAYERS = 8

_LAYER_TYPES = (nn.Linear, nn.modules.conv._ConvNd)
_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
               nn.modules.instancenorm._InstanceNorm)
_PASS_THROUGH = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                 nn.Identity, nn.Flatten, nn.Unflatten)

#: output activation names (of modules and of autograd nodes)
_MODULE_ACT = ((nn.Softmax, "softmax"), (nn.Sigmoid, "sigmoid"), (nn.ReLU, "relu"),
               (nn.LogSoftmax, "log_softmax"))
_NODE_ACT = {"SoftmaxBackward0": "softmax", "SigmoidBackward0": "sigmoid",
             "ReluBackward0": "relu", "LogSoftmaxBackward0": "log_softmax"}

#: loss (normalised name) -> (what it expects, output activations that are wrong before it)
_LOSSES = {
    "crossentropy": ("raw logits", ("softmax", "sigmoid", "relu")),
    "bcewithlogits": ("raw logits", ("softmax", "sigmoid", "relu")),
    "binarycrossentropywithlogits": ("raw logits", ("softmax", "sigmoid", "relu")),
    "multilabelsoftmargin": ("raw logits", ("softmax", "sigmoid", "relu")),
    "nll": ("log-probabilities (LogSoftmax)", ("softmax", "sigmoid", "relu")),
}


def loss_name(loss_fn: Any) -> str | None:
    """A loss given as an instance, class, function or string -> its display name."""
    if loss_fn is None:
        return None
    if isinstance(loss_fn, str):
        return loss_fn
    if isinstance(loss_fn, nn.Module):
        return type(loss_fn).__name__
    return getattr(loss_fn, "__name__", None)


def _loss_key(name: str) -> str:
    key = name.lower().replace("_", "").replace("nn.", "").rsplit(".", 1)[-1]
    return key[:-4] if key.endswith("loss") else key


def output_node_act(output: Any) -> str | None:
    """The activation that produced the model's (first tensor) output, from its grad_fn."""
    out = output
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.grad_fn is None:
        return None
    return _NODE_ACT.get(type(out.grad_fn).__name__, "")


def _finding(kind: str, severity: str, subject: str, title: str, recommendation: str,
             evidence: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "subject": subject, "title": title,
            "recommendation": recommendation, "evidence": evidence}


def check_output_activation(leaves: Sequence[tuple], loss: str | None,
                            node_act: str | None) -> list[dict[str, Any]]:
    """``leaves``: (name, module) in call or registration order. ``node_act``: the output's
    activation from autograd ("" = none, None = unknown)."""
    if not loss or _loss_key(loss) not in _LOSSES:
        return []
    expects, bad = _LOSSES[_loss_key(loss)]
    last_name, last_act = "output", None
    if leaves:
        name, module = leaves[-1]
        for cls, act in _MODULE_ACT:
            if isinstance(module, cls):
                last_name, last_act = name, act
    act = last_act if node_act is None else node_act
    if act not in bad:
        return []
    subject = last_name if act == last_act else "output"
    fix = ("end with LogSoftmax, or drop the activation and use CrossEntropyLoss"
           if _loss_key(loss) == "nll" else
           f"drop it and feed the raw outputs to {loss}, which applies "
           f"{'softmax' if 'entropy' in _loss_key(loss) else 'the sigmoid'} itself")
    return [_finding(
        "output_activation", "warning", subject,
        f"The model's output goes through {act} before {loss}, which expects {expects}",
        f"Remove the final {act}: {fix}. Apply it only where you need probabilities.",
        {"activation": act, "loss": loss, "module": subject})]


def check_missing_bias(leaves: Sequence[tuple]) -> list[dict[str, Any]]:
    """Linear/Conv layers without bias whose next leaf (skipping dropout, identity, flatten)
    is not a normalisation layer."""
    flagged = []
    for i, (name, module) in enumerate(leaves):
        if not isinstance(module, _LAYER_TYPES) or getattr(module, "bias", None) is not None:
            continue
        nxt = next((m for _, m in leaves[i + 1:] if not isinstance(m, _PASS_THROUGH)), None)
        if isinstance(nxt, _NORM_TYPES):
            continue
        flagged.append((name, type(module).__name__,
                        type(nxt).__name__ if nxt is not None else None))
    if len(flagged) > MISSING_BIAS_MAX_LAYERS:
        names = [f[0] for f in flagged]
        return [_finding(
            "missing_bias", "info", "model",
            f"{len(flagged)} linear/conv layers have no bias and no normalisation after them",
            "If this is not a deliberate design, add bias=True to these layers.",
            {"layers": names[:20], "count": len(flagged)})]
    return [_finding(
        "missing_bias", "info", name,
        f"{cls} `{name}` has no bias and no normalisation after it",
        "Add a bias (bias=True): without one, the layer's outputs cannot shift away from 0.",
        {"layer": cls, "next": nxt}) for name, cls, nxt in flagged]


def check_symmetric_init(weighted: Sequence[tuple]) -> list[dict[str, Any]]:
    """``weighted``: (name, module) of layers with a weight of 2+ dims, in order. A layer
    whose weight entries are all equal: critical, unless it is only the last layer (a zero
    output layer is a known deliberate choice): info."""
    equal = []
    for idx, (name, module) in enumerate(weighted):
        w = getattr(module, "weight", None)
        if (not isinstance(w, torch.Tensor) or is_lazy(w) or w.is_meta or w.dim() < 2
                or w.numel() < 2):
            continue
        with torch.no_grad():
            lo, hi = torch.aminmax(w.detach())
            if bool(lo == hi):  # a sync, at watch() time only
                equal.append((idx, name, float(lo), list(w.shape)))
    findings = []
    last = len(weighted) - 1
    for idx, name, value, shape in equal:
        only_last = idx == last and len(equal) == 1
        findings.append(_finding(
            "symmetric_init", "info" if only_last else "critical", name,
            f"All weights of `{name}` are equal ({value:g}): its units all learn the same thing",
            "Use variance-scaled random init (He/Kaiming for ReLU, Xavier/Glorot for tanh), "
            "e.g. keep PyTorch's default init; never set all weights to one value."
            + (" A zero-initialised output layer alone can be deliberate." if only_last else ""),
            {"value": value, "shape": shape}))
    return findings


def check_small_batch_norm(bn_layers: Sequence[str], batch_size: int | None,
                           source: str) -> list[dict[str, Any]]:
    """Batch norm layers trained on batches of ``BN_SMALL_BATCH`` samples or fewer."""
    if not bn_layers or batch_size is None or batch_size > BN_SMALL_BATCH:
        return []
    severity = "critical" if batch_size <= BN_TINY_BATCH else "warning"
    return [_finding(
        "small_batch_norm", severity, "model",
        f"Batch norm with batches of {batch_size}: its batch statistics are very noisy",
        "Raise the batch size (16 or more per device), or use GroupNorm/LayerNorm, or freeze "
        "the batch norm statistics.",
        {"batch_size": batch_size, "source": source, "layers": list(bn_layers)[:20],
         "threshold": BN_SMALL_BATCH})]


def run_checks(model: nn.Module, loss: str | None, batch_size: int | None, batch_source: str,
               order: Sequence[str] | None = None, node_act: str | None = None,
               observed_batch: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """All four checks. ``order``: leaf names in call order (None: registration order);
    ``observed_batch``: batch norm name -> batch it saw (used when no batch size is known)."""
    by_name = {n: m for n, m in model.named_modules()}
    if order is None:
        leaves = [(n, m) for n, m in by_name.items() if not any(True for _ in m.children())]
    else:
        leaves = [(n, by_name[n]) for n in dict.fromkeys(order) if n in by_name]
    weighted = [(n, m) for n, m in leaves if isinstance(getattr(m, "weight", None), torch.Tensor)
                and not is_lazy(m.weight) and m.weight.dim() >= 2]
    bns = [n for n, m in by_name.items() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if batch_size is None and observed_batch:
        batch_size, batch_source = min(observed_batch.values()), "observed"
    return (check_output_activation(leaves, loss, node_act)
            + check_missing_bias(leaves)
            + check_symmetric_init(weighted)
            + check_small_batch_norm(bns, batch_size, batch_source))
