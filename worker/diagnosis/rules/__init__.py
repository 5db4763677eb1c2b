"""The diagnosis rules of RULES.md, one module each, in one registry keyed by kind.

Every rule has the same signature, `rule(run) -> list[Finding]`, is pure (numbers
in, findings out) and returns [] when its signal is missing or too short.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from worker.diagnosis.findings import Finding
from worker.diagnosis.rules import (
    batch_variance,
    dead_relu,
    divergence,
    early_plateau,
    early_stopping_point,
    exploding_gradients,
    loss_at_init,
    lr_decay_too_early,
    lr_oscillation,
    lr_too_low,
    nan_loss,
    not_learning,
    overfitting,
    saturated_activations,
    symmetric_init,
    unscaled_inputs,
    update_ratio,
    val_plateau,
    vanishing_gradients,
)
from worker.diagnosis.series import RunData

Rule = Callable[[RunData], list[Finding]]

_MODULES = (
    # curve rules
    nan_loss, divergence, lr_oscillation, lr_too_low, early_plateau, batch_variance,
    overfitting, val_plateau, not_learning, loss_at_init, lr_decay_too_early,
    early_stopping_point,
    # layer rules
    vanishing_gradients, exploding_gradients, dead_relu, saturated_activations,
    unscaled_inputs, symmetric_init, update_ratio,
)

RULES: MappingProxyType[str, Rule] = MappingProxyType({m.KIND: m.rule for m in _MODULES})
"""kind -> rule, in the order of RULES.md."""

CURVE_KINDS: tuple[str, ...] = tuple(m.KIND for m in _MODULES[:12])
LAYER_KINDS: tuple[str, ...] = tuple(m.KIND for m in _MODULES[12:])

__all__ = ["CURVE_KINDS", "LAYER_KINDS", "RULES", "Rule"]
