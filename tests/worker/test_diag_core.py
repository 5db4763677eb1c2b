"""SeriesData, bucket aggregates, Finding, and the registry that runs the rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.worker.synth import healthy
from worker.diagnosis import (
    CURVE_KINDS,
    LAYER_KINDS,
    RULES,
    Finding,
    RuleError,
    RunData,
    SeriesData,
    diagnose,
)

RULES_MD_KINDS = {
    "nan_loss", "divergence", "lr_oscillation", "lr_too_low", "early_plateau",
    "batch_variance", "overfitting", "val_plateau", "not_learning", "loss_at_init",
    "lr_decay_too_early", "early_stopping_point", "vanishing_gradients",
    "exploding_gradients", "dead_relu", "saturated_activations", "unscaled_inputs",
    "symmetric_init", "update_ratio",
}


def test_registry_holds_every_rule_of_rules_md():
    assert set(RULES) == RULES_MD_KINDS
    assert set(CURVE_KINDS) | set(LAYER_KINDS) == RULES_MD_KINDS


def test_series_validates_and_sorts():
    with pytest.raises(ValueError):
        SeriesData(np.array([2, 1]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError):
        SeriesData(np.array([1, 1]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError):
        SeriesData(np.array([1, 2]), np.array([0.0]))
    s = SeriesData.from_unsorted([5, 1, 5, 3], [1.0, 2.0, np.nan, 4.0])
    assert s.steps.tolist() == [1, 3, 5] and s.steps.dtype == np.int64
    assert math.isnan(s.values[-1])  # the last value given for step 5 wins


def test_buckets_match_a_naive_computation_and_keep_every_extreme():
    rng = np.random.default_rng(0)
    v = rng.standard_normal(10_007)
    v[rng.integers(0, v.size, 50)] = np.nan
    v[4321] = 1e6
    s = SeriesData(np.arange(v.size) * 3, v)
    b = s.buckets(97)
    steps, finite = s.finite_points()
    assert b.count.sum() == finite.size and len(b) == 97
    assert b.max.max() == 1e6 and b.min.min() == finite.min()
    edges = np.cumsum(np.concatenate([[0], b.count]))
    for i in (0, 50, 96):
        chunk = finite[edges[i]:edges[i + 1]]
        assert b.median[i] == pytest.approx(np.median(chunk))
        assert b.mean[i] == pytest.approx(chunk.mean())
        assert b.q25[i] == pytest.approx(np.quantile(chunk, 0.25))
        assert b.step_lo[i] == steps[edges[i]]
    assert np.nanmedian(b.noise) == pytest.approx(1.0, rel=0.1)  # unit Gaussian noise


def test_buckets_of_short_and_empty_series():
    assert len(SeriesData(np.arange(5), np.arange(5.0)).buckets(100, 3)) == 1
    assert len(SeriesData(np.arange(0), np.arange(0.0)).buckets(100)) == 0
    assert len(SeriesData(np.arange(3), np.full(3, np.nan)).buckets(10)) == 0


def test_until_and_value_at():
    s = SeriesData(np.array([0, 10, 20]), np.array([1.0, 2.0, 3.0]))
    assert s.until(15).steps.tolist() == [0, 10]
    assert s.value_at(np.array([-1, 0, 15, 99])).tolist()[1:] == [1.0, 2.0, 3.0]
    run = RunData({"loss": s, "grad_norm/fc1": s, "grad_norm": s})
    assert list(run.with_prefix("grad_norm/")) == ["fc1"]
    assert run.until(10).last_step == 10 and run.get("nope") is None


def test_finding_evidence_is_plain_json():
    f = Finding("divergence", "warning", np.int64(3), None, None, "t", "r",
                {"a": np.float32(1.5), "b": float("nan"), "c": [np.inf, 2], "d": np.bool_(True)})
    assert f.evidence == {"a": 1.5, "b": None, "c": [None, 2], "d": True}
    assert json.loads(json.dumps(f.to_dict(), allow_nan=False))["step_start"] == 3
    with pytest.raises(ValueError):
        Finding("x", "fatal", None, None, None, "t", "r")


def test_diagnose_isolates_a_rule_that_raises():
    def broken(run):
        raise RuntimeError("boom")

    def one(run):
        return [Finding("one", "info", 0, 1, None, "t", "r")]

    errors: list[RuleError] = []
    found = diagnose(healthy(), rules={"broken": broken, "one": one}, errors=errors)
    assert [f.kind for f in found] == ["one"]
    assert errors == [RuleError("broken", "RuntimeError: boom")]


def test_diagnose_on_a_healthy_run_says_nothing_loud():
    errors: list[RuleError] = []
    assert [f for f in diagnose(healthy(), errors=errors) if f.severity != "info"] == []
    assert errors == []


def test_every_kind_is_documented_for_users():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "diagnoses.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in doc.splitlines()
            if line.startswith("| `")}
    assert rows == set(RULES)
