"""Each curve rule on a synthetic positive and on a healthy run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.worker.synth import healthy, healthy_points, replace, run_of, without
from worker.diagnosis import RULES

CURVE_RULES = ("nan_loss", "divergence", "lr_oscillation", "lr_too_low", "early_plateau",
               "batch_variance", "overfitting", "val_plateau", "not_learning", "loss_at_init",
               "lr_decay_too_early", "early_stopping_point")


def kinds(run, kind):
    found = RULES[kind](run)
    assert all(f.kind == kind for f in found)
    return found


@pytest.mark.parametrize("kind", CURVE_RULES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_run_is_clean(kind, seed):
    assert kinds(healthy(seed=seed), kind) == []


def test_nan_loss_reports_the_first_bad_step():
    pts = healthy_points()
    pts["loss"][1][700:] = np.nan
    (f,) = kinds(run_of(pts), "nan_loss")
    assert f.severity == "critical" and f.step_start == 700
    assert f.evidence["nonfinite_points"] == 800 and "700" in f.title
    assert "from 0.001 to about 1e-4" in f.recommendation


def test_nan_loss_sees_a_single_inf_and_a_gradient_overflow():
    pts = healthy_points()
    pts["loss"][1][1234] = np.inf
    assert kinds(run_of(pts), "nan_loss")[0].step_start == 1234
    pts = healthy_points()
    pts["grad_norm/fc1"][1][40] = np.nan
    (f,) = kinds(run_of(pts), "nan_loss")
    assert f.severity == "warning" and f.step_start == 400


def test_nan_loss_tolerates_rare_overflows_under_amp():
    pts = healthy_points()
    pts["grad_nonfinite"][1][[10, 50]] = 1.0
    assert kinds(run_of(pts), "nan_loss")
    assert kinds(run_of(pts, config={"amp": True}), "nan_loss") == []


def test_divergence():
    t = np.arange(1000)
    rng = np.random.default_rng(0)
    level = np.where(t < 400, 2.3 * np.exp(-t / 80) + 0.1, 0.1 * np.exp((t - 400) / 80))
    run = replace(healthy(1000), loss=(t, level * np.exp(0.1 * rng.standard_normal(1000))))
    (f,) = kinds(run, "divergence")
    assert f.severity == "critical" and 380 <= f.step_start <= 420  # from its best
    assert "Lower the learning rate from 0.001" in f.recommendation


def test_divergence_ignores_a_transient_bump():
    pts = healthy_points()
    pts["loss"][1][600:650] *= 30
    assert kinds(run_of(pts), "divergence") == []


def _moons_like(n=1000, seed=0, val_wobble=0.3, drop=True):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = (0.5 * np.exp(-t / 30) if drop else 0.0) + 0.3
    te = np.arange(0, n, 25)
    val = 0.25 * (1 + val_wobble * np.sin(te / 20.0))
    return replace(healthy(n), loss=(t, level * np.exp(0.4 * rng.standard_normal(n))),
                   val__loss=(te, val), lr=(t, np.full(n, 0.1)))


def test_lr_oscillation_on_swinging_validation():
    (f,) = kinds(_moons_like(), "lr_oscillation")
    assert "0.1 to about 0.03" in f.recommendation


def test_lr_oscillation_silent_when_validation_is_smooth():
    assert kinds(_moons_like(val_wobble=0.0), "lr_oscillation") == []


def test_lr_oscillation_without_validation_needs_real_swings():
    n = 1000
    t = np.arange(n)
    rng = np.random.default_rng(0)
    wave = 1.0 + 0.4 * np.sin(t / 40.0)
    run = without(replace(healthy(n), loss=(t, 1.5 * wave * np.exp(0.05 * rng.standard_normal(n)))),
                  "val/")
    assert kinds(run, "lr_oscillation")
    flat = replace(run, loss=(t, 1.5 * np.exp(0.05 * rng.standard_normal(n))))
    assert kinds(flat, "lr_oscillation") == []


def test_early_plateau():
    (f,) = kinds(_moons_like(val_wobble=0.2), "early_plateau")
    assert f.step_start < 200


def test_lr_too_low():
    t = np.arange(1500)
    rng = np.random.default_rng(0)
    te = np.arange(0, 1500, 50)
    run = replace(healthy(), loss=(t, (2.3 - 1e-4 * t) * (1 + 0.005 * rng.standard_normal(1500))),
                  val__loss=(te, 2.3 - 1e-4 * te))
    (f,) = kinds(run, "lr_too_low")
    assert "Raise the learning rate from 0.001 to about 0.01" in f.recommendation


def test_lr_too_low_silent_while_warming_up():
    t = np.arange(1500)
    run = replace(healthy(), loss=(t, 2.3 - 1e-4 * t), lr=(t, 1e-3 * np.minimum(1, t / 1000)))
    assert kinds(run, "lr_too_low") == []


def test_batch_variance():
    n = 3000
    rng = np.random.default_rng(0)
    t = np.arange(n)
    level = 2.2 * np.exp(-t / 500) + 0.01
    loss = level * rng.gamma(0.3, 1 / 0.3, n)  # tiny batches: most easy, a few hard
    (f,) = kinds(replace(healthy(n), loss=(t, loss)), "batch_variance")
    assert "Raise the batch size from 32" in f.recommendation


def _overfit(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    te = np.arange(0, n, 25)
    train = (2.3 * np.exp(-t / 100) + 1e-4) * np.exp(0.2 * rng.standard_normal(n))
    val = np.where(te < 300, 2.3 * np.exp(-te / 80) + 0.4 - 0.0001 * te,
                   0.41 + 0.0004 * (te - 300))
    return replace(healthy(n), loss=(t, train), val__loss=(te, val))


def test_overfitting_and_early_stopping_point():
    run = _overfit()
    (f,) = kinds(run, "overfitting")
    assert 250 <= f.step_start <= 350
    (g,) = kinds(run, "early_stopping_point")
    assert g.evidence["best_step"] == f.step_start
    assert f"{g.evidence['best_step']:,}" in g.recommendation


def test_val_plateau():
    n = 1200
    rng = np.random.default_rng(0)
    t = np.arange(n)
    te = np.arange(0, n, 25)
    val = np.where(te < 100, 2.3 - 0.017 * te, 0.6) * (1 + 0.01 * rng.standard_normal(te.size))
    train = (2.3 * np.exp(-t / 40) + 0.05) * np.exp(0.2 * rng.standard_normal(n))
    (f,) = kinds(replace(healthy(n), loss=(t, train), val__loss=(te, val)), "val_plateau")
    assert f.severity == "info" and "Halve the learning rate (from 0.001 to 5e-4)" in \
        f.recommendation


def test_not_learning_flat_and_memorising():
    t = np.arange(800)
    rng = np.random.default_rng(0)
    run = replace(healthy(800), loss=(t, 2.3 * (1 + 0.01 * rng.standard_normal(800))))
    assert kinds(run, "not_learning")
    te = np.arange(0, 800, 50)
    memo = replace(healthy(800), loss=(t, 2.3 - 0.001 * t),
                   val__loss=(te, 2.3 + 0.0005 * te))
    (f,) = kinds(memo, "not_learning")
    assert "never improved" in f.title


def test_loss_at_init():
    pts = healthy_points()
    pts["loss"][1][0] = 25.0
    (f,) = kinds(run_of(pts), "loss_at_init")
    assert f.severity == "critical" and "2.3" in f.title
    assert kinds(run_of(pts, config={"n_classes": 10, "loss": "mse"}), "loss_at_init") == []
    assert kinds(run_of(pts, config={}), "loss_at_init") == []


def test_lr_decay_too_early():
    n = 1200
    t = np.arange(n)
    rng = np.random.default_rng(0)
    lr = np.where(t < 60, 0.05, 0.0005)
    fast = 2.3 * np.exp(-np.minimum(t, 60) / 40) + 0.02 * np.maximum(0, 1 - (t - 60) / 1e4)
    run = replace(healthy(n), loss=(t, fast * np.exp(0.1 * rng.standard_normal(n))), lr=(t, lr))
    (f,) = kinds(run, "lr_decay_too_early")
    assert f.step_start == 60


def test_lr_decay_to_zero_before_the_planned_end():
    t = np.arange(1000)
    run = replace(healthy(1000), lr=(t, 1e-3 * np.maximum(0, 1 - t / 300)))
    assert kinds(run, "lr_decay_too_early")
    cosine = replace(healthy(1000), lr=(t, 5e-4 * (1 + np.cos(np.pi * t / 999))))
    assert kinds(cosine, "lr_decay_too_early") == []
    late = run_of(healthy_points(1000), total_steps=1000)
    assert kinds(replace(late, lr=(t, 5e-4 * (1 + np.cos(np.pi * t / 999)))),
                 "lr_decay_too_early") == []
