"""Each layer rule on a synthetic positive and on a healthy run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.worker.synth import healthy, healthy_points, kinds, replace, run_of

LAYER_RULES = ("vanishing_gradients", "exploding_gradients", "dead_relu",
               "saturated_activations", "unscaled_inputs", "symmetric_init", "update_ratio")
TL = np.arange(0, 1500, 10)


@pytest.mark.parametrize("kind", LAYER_RULES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_run_is_clean(kind, seed):
    assert kinds(healthy(seed=seed), kind) == []


def test_vanishing_gradients():
    run = replace(healthy(), grad_norm__fc1=(TL, np.full(TL.size, 1e-7)),
                  grad_norm__fc2=(TL, np.full(TL.size, 1e-5)))
    (f,) = kinds(run, "vanishing_gradients")
    assert f.evidence["weakest"] == "fc1" and f.evidence["strongest"] == "out"
    assert "`fc1`" in f.recommendation and "`fc2`" in f.recommendation


def test_vanishing_gradients_leaves_exact_zeros_to_other_rules():
    run = replace(healthy(), grad_norm__fc1=(TL, np.zeros(TL.size)))
    assert kinds(run, "vanishing_gradients") == []


def test_exploding_gradients_spike_in_one_point():
    pts = healthy_points()
    pts["grad_norm"][1][77] = 500.0
    (f,) = kinds(run_of(pts), "exploding_gradients")
    assert f.evidence["spike_step"] == 770 and "770" in f.title
    assert "clip_grad_norm_" in f.recommendation


def test_exploding_gradients_growth():
    g = 0.5 * np.exp(TL / 200.0)
    (f,) = kinds(replace(healthy(), grad_norm=(TL, g)), "exploding_gradients")
    assert f.severity == "warning" and f.evidence["growth"] > 30


def test_dead_relu():
    z = np.where(TL < 500, 0.5, 0.97)
    (f,) = kinds(replace(healthy(), act_zero_frac__act1=(TL, z)), "dead_relu")
    assert f.subject == "act1" and f.step_start == 500


def test_dead_relu_that_recovers_is_not_reported():
    z = np.where((TL > 500) & (TL < 1400), 0.97, 0.5)
    assert kinds(replace(healthy(), act_zero_frac__act1=(TL, z)), "dead_relu") == []


def test_saturated_activations():
    (f,) = kinds(replace(healthy(), act_sat_frac__act2=(TL, np.full(TL.size, 0.9))),
                 "saturated_activations")
    assert f.subject == "act2"


def test_unscaled_inputs():
    run = replace(healthy(), input__mean=(TL, np.full(TL.size, 120.0)),
                  input__std=(TL, np.full(TL.size, 70.0)))
    (f,) = kinds(run, "unscaled_inputs")
    assert "(x - 120) / 70" in f.recommendation


def test_symmetric_init():
    w = np.where(TL == 0, 0.0, 1e-3 * TL)
    run = replace(healthy(), weight_norm__fc1=(TL, w), weight_norm__fc2=(TL, w))
    assert {f.subject for f in kinds(run, "symmetric_init")} == {"fc1", "fc2"}


def test_symmetric_init_ignores_a_single_zero_output_layer():
    w = np.where(TL == 0, 0.0, 1e-3 * TL)
    assert kinds(replace(healthy(), weight_norm__out=(TL, w)), "symmetric_init") == []


def test_symmetric_init_single_zero_layer_that_never_learns():
    run = replace(healthy(), weight_norm__fc1=(TL, np.zeros(TL.size)),
                  grad_norm__fc1=(TL, np.zeros(TL.size)))
    (f,) = kinds(run, "symmetric_init")
    assert f.severity == "critical" and f.evidence["never_updated"] is True


@pytest.mark.parametrize("ratio,verb", [(1e-7, "Raise"), (0.5, "Lower")])
def test_update_ratio(ratio, verb):
    run = healthy()
    for m in ("fc1", "fc2", "out"):
        run = replace(run, **{f"update_ratio__{m}": (TL, np.full(TL.size, ratio))})
    (f,) = kinds(run, "update_ratio")
    assert f.recommendation.startswith(f"{verb} the learning rate from 0.001")
