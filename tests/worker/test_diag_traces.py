"""The rules on real training traces from bench/diagnosis/traces (see its README)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from worker.diagnosis import RULES, diagnose

_PATH = Path(__file__).resolve().parents[2] / "bench" / "diagnosis" / "tracefile.py"
_SPEC = importlib.util.spec_from_file_location("diagnosis_tracefile", _PATH)
tracefile = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tracefile)

POSITIVES = {  # kind -> two traces whose injected fault must be reported
    "nan_loss": ("nan-lrspike-mlp", "nan-databatch-cnn"),
    "divergence": ("div-lrspike-cnn", "div-lrramp-gru"),
    "lr_oscillation": ("osc-adam0.1-moons-s0", "osc-adam0.1-moons-s3"),
    "lr_too_low": ("low-sgd1e-3-mlp", "low-adam3e-5-gru"),
    "early_plateau": ("plateau-adam0.03-moons-s4", "plateau-adam0.05-moons-s7"),
    "batch_variance": ("bv-bs1-adam-mlp", "bv-bs2-adam-cnn"),
    "overfitting": ("overfit-digits100-s0", "overfit-hard200"),
    "val_plateau": ("valplateau-digits60-s0", "valplateau-digits60-s3"),
    "not_learning": ("notlearn-frozen-cnn", "notlearn-shuffled-hard"),
    "loss_at_init": ("init-biglast-mlp", "init-bigbias-gru"),
    "lr_decay_too_early": ("decay-step5pct-mlp", "decay-tozero-cnn"),
    "early_stopping_point": ("overfit-cancer40", "overfit-moons60"),
    "vanishing_gradients": ("vanish-sigmoid8-sgd", "vanish-tanh16-sgd"),
    "exploding_gradients": ("explode-corrupt-mlp", "explode-corrupt-cnn"),
    "dead_relu": ("dead-sgd3-mlp", "dead-negbias-mlp"),
    "saturated_activations": ("sat-tanh-bigall", "sat-sigmoid-inputs30"),
    "unscaled_inputs": ("unscaled-x1000-mlp", "unscaled-offset50-moons"),
    "symmetric_init": ("symmetric-zero-relu", "symmetric-zero-sigmoid"),
    "update_ratio": ("updates-sgd1e-5-mlp", "updates-sgd3e-6-gru"),
}
LABELS = tracefile.labels()
HEALTHY = sorted(n for n, lab in LABELS.items() if lab["healthy"] and n.endswith("-s0"))


def test_every_kind_has_real_positives():
    assert set(POSITIVES) == set(RULES)
    for kind, names in POSITIVES.items():
        assert all(kind in LABELS[n]["must"] for n in names), kind


@pytest.mark.parametrize("kind,name", [(k, n) for k, ns in POSITIVES.items() for n in ns])
def test_injected_fault_is_reported(kind, name):
    found = RULES[kind](tracefile.load_run(name))
    assert found and found[0].title and found[0].recommendation


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_trace_is_clean(name):
    errors = []
    loud = [f.kind for f in diagnose(tracefile.load_run(name), errors=errors)
            if f.severity != "info"]
    assert loud == [] and errors == []


@pytest.mark.parametrize("name", ["healthy-mlp-digits-log10-s1", "healthy-mlp-digits-short-s2",
                                  "healthy-mlp-digits-jitter-s3"])
def test_sparse_short_and_irregular_logging_stay_clean(name):
    assert [f for f in diagnose(tracefile.load_run(name)) if f.severity != "info"] == []


@pytest.mark.parametrize("kind,name", [("divergence", "div-lrspike-mlp"),
                                       ("nan_loss", "nan-databatch-moons")])
def test_silent_before_the_fault(kind, name):
    run = tracefile.load_run(name)
    onset = LABELS[name]["onset"]
    assert RULES[kind](run.until(onset - 1)) == []
    assert RULES[kind](run)
