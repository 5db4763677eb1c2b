"""Rules never raise, never guess without their signal, and scale to a million points."""

from __future__ import annotations

import numpy as np
import pytest

from tests.worker.synth import LAYERS, healthy, only, run_of, without
from worker.diagnosis import RULES, RuleError, RunData, SeriesData, diagnose


def _all_keys_run(n: int, values) -> RunData:
    steps = np.arange(n)
    keys = ["loss", "val/loss", "lr", "grad_norm", "grad_nonfinite", "input/mean", "input/std",
            "act_zero_frac/act1", "act_sat_frac/act2"]
    keys += [f"{p}/{m}" for p in ("grad_norm", "weight_norm", "update_ratio") for m in LAYERS]
    return RunData({k: SeriesData(steps, values(n, i)) for i, k in enumerate(keys)},
                   {"n_classes": 10, "loss": "cross_entropy", "lr": 0.1, "batch_size": 4})


RNG = np.random.default_rng(0)
ODD = {
    "empty": (0, lambda n, i: np.zeros(0)),
    "one": (1, lambda n, i: np.ones(1)),
    "twenty": (20, lambda n, i: RNG.random(n) + i),
    "all_nan": (50, lambda n, i: np.full(n, np.nan)),
    "nan_laden": (300, lambda n, i: np.where(RNG.random(n) < 0.5, np.nan, RNG.random(n))),
    "infs": (300, lambda n, i: np.where(RNG.random(n) < 0.1, np.inf, 1.0 + RNG.random(n))),
    "constant": (300, lambda n, i: np.full(n, 2.0)),
    "zeros": (300, lambda n, i: np.zeros(n)),
    "negative": (300, lambda n, i: -RNG.random(n)),
    "huge": (300, lambda n, i: 1e300 * RNG.random(n)),
}


@pytest.mark.parametrize("kind", sorted(RULES))
@pytest.mark.parametrize("case", sorted(ODD))
def test_rules_never_raise(kind, case):
    n, values = ODD[case]
    found = RULES[kind](_all_keys_run(n, values))
    assert isinstance(found, list)


def test_nan_laden_run_reports_nan_loss_and_no_error():
    errors: list[RuleError] = []
    found = diagnose(_all_keys_run(300, ODD["nan_laden"][1]), errors=errors)
    assert errors == [] and "nan_loss" in {f.kind for f in found}


def test_irregular_steps_and_sparse_logging():
    base = healthy(3000, layer_every=100, eval_every=300)
    keep = np.sort(np.random.default_rng(1).choice(3000, 600, replace=False))
    series = {k: SeriesData(s.steps[np.isin(s.steps, keep)], s.values[np.isin(s.steps, keep)])
              if k == "loss" else s for k, s in base.series.items()}
    assert [f for f in diagnose(RunData(series, base.config)) if f.severity != "info"] == []


LAYER_ONLY = ("grad_norm", "weight_norm", "update_ratio", "act_", "input/")
SIGNALS = {  # kind -> the key prefixes it needs
    "vanishing_gradients": ("grad_norm/",), "exploding_gradients": ("grad_norm",),
    "dead_relu": ("act_zero_frac/",), "saturated_activations": ("act_sat_frac/",),
    "unscaled_inputs": ("input/",), "symmetric_init": ("weight_norm/",),
    "update_ratio": ("update_ratio/",), "overfitting": ("val/",), "val_plateau": ("val/",),
    "early_stopping_point": ("val/",), "lr_decay_too_early": ("lr",),
    "nan_loss": ("loss", "grad_norm", "grad_nonfinite"),
}


@pytest.mark.parametrize("kind", sorted(RULES))
def test_silent_without_its_signal(kind):
    faulty = _all_keys_run(2000, lambda n, i: np.where(np.arange(n) % 97 == 0, np.nan,
                                                       1e4 * RNG.random(n) + i))
    if kind in SIGNALS:
        assert RULES[kind](without(faulty, *SIGNALS[kind])) == []
    else:  # the curve rules need `loss`
        assert RULES[kind](only(faulty, *LAYER_ONLY)) == []
    if kind == "loss_at_init":
        assert RULES[kind](RunData(faulty.series, {})) == []


def test_a_million_points():
    n = 1_000_000
    rng = np.random.default_rng(0)
    t = np.arange(n)
    loss = (2.2 * np.exp(-t / 80_000) + 0.1) * np.exp(0.2 * rng.standard_normal(n))
    loss[999_990] = np.nan
    te = np.arange(0, n, 1000)
    grad = 0.3 * np.exp(0.2 * rng.standard_normal(n))
    grad[654_321] = 1e4
    run = run_of({"loss": (t, loss), "val/loss": (te, 2.2 * np.exp(-te / 80_000) + 0.2),
                  "lr": (t, np.full(n, 1e-3)), "grad_norm": (t, grad)})
    errors: list[RuleError] = []
    found = {f.kind: f for f in diagnose(run, errors=errors)}
    assert errors == []
    assert found["nan_loss"].step_start == 999_990
    assert found["exploding_gradients"].evidence["spike_step"] == 654_321
    assert set(found) == {"nan_loss", "exploding_gradients"}
