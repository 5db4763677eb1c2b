"""Each curve rule on a synthetic positive and on a healthy run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.worker.synth import healthy, healthy_points, kinds, replace, run_of, without
from worker.diagnosis import RULES, RunData
from worker.diagnosis.rules import early_plateau, not_learning

CURVE_RULES = ("nan_loss", "divergence", "lr_oscillation", "lr_too_low", "early_plateau",
               "batch_variance", "overfitting", "val_plateau", "not_learning", "loss_at_init",
               "lr_decay_too_early", "early_stopping_point")


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


def test_divergence_needs_a_level_not_one_lucky_bucket():
    # batch size 1: one bucket of easy samples dips far below the curve; the level after it
    # is no rise (the best is read as a running median of 3 buckets)
    n = 150
    t = np.arange(n)
    rng = np.random.default_rng(0)
    loss = (2.0 + 0.3 * np.exp(-t / 20)) * np.exp(0.15 * rng.standard_normal(n))
    loss[60:63] = 0.05
    assert kinds(replace(healthy(n), loss=(t, loss)), "divergence") == []


def _moons_like(n=1000, seed=0, val_wobble=0.3, drop=True):
    """A 2-class run (ln 2 = 0.69 at init) at a high lr: fast drop, then flat at 0.3."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = (0.5 * np.exp(-t / 30) if drop else 0.0) + 0.3
    te = np.arange(0, n, 25)
    val = 0.25 * (1 + val_wobble * np.sin(te / 20.0))
    run = replace(healthy(n), loss=(t, level * np.exp(0.4 * rng.standard_normal(n))),
                  val__loss=(te, val), lr=(t, np.full(n, 0.1)))
    return type(run)(run.series, dict(run.config, n_classes=2), run.total_steps)


def test_lr_oscillation_on_swinging_validation():
    (f,) = kinds(_moons_like(), "lr_oscillation")
    assert "0.1 to about 0.03" in f.recommendation


def test_lr_oscillation_silent_when_validation_is_smooth():
    assert kinds(_moons_like(val_wobble=0.0), "lr_oscillation") == []


def test_lr_oscillation_reads_back_and_forth_not_the_first_drop():
    # evaluations every 5% of the run: judged from the fourth one on, the first left out
    n, te = 200, np.arange(0, 200, 50)
    run = replace(_moons_like(n), val__loss=(te, np.array([0.7, 0.3, 0.45, 0.28])))
    (f,) = kinds(run, "lr_oscillation")
    assert "back and forth" in f.title and f.evidence["val_swing"] > 0.3
    # a big first drop, then a smooth slow descent: no swing
    smooth = replace(run, val__loss=(te, np.array([0.7, 0.3, 0.29, 0.28])))
    assert kinds(smooth, "lr_oscillation") == []


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


def _stuck(n=1000, floor=0.8, start=2.3, drift=0.0, first=0):
    """A 10-class run dropping from `start` to `floor` in ~10 steps, then flat (or drifting
    down by `drift` of the floor over the run) with a restless validation loss."""
    rng = np.random.default_rng(0)
    t = np.arange(first, n)
    level = (start - floor) * np.exp(-t / 4) + floor * (1 - drift * t / n)
    te = np.arange(first, n, 25)
    val = floor * (1 + 0.2 * np.sin(te / 20.0))
    return replace(healthy(n), loss=(t, level * np.exp(0.3 * rng.standard_normal(t.size))),
                   val__loss=(te, val), lr=(t, np.full(t.size, 0.03)))


def test_early_plateau_flat_relative_to_the_drop():
    # a 30% drift over the run is flat next to a drop done in a few steps
    (f,) = kinds(_stuck(drift=0.3), "early_plateau")
    assert f.evidence["slope_ratio"] < 0.005 and "slower than during the drop" in f.title
    # falling by more than half its level again is no plateau, however fast the drop was
    m = early_plateau.measure(_stuck(drift=0.4))
    assert m["slope_ratio"] < early_plateau.MAX_SLOPE_RATIO < 0.5 < m["flat_drop"]
    assert kinds(_stuck(drift=0.4), "early_plateau") == []


def test_early_plateau_measures_the_drop_from_a_sane_init():
    # a broken init (first loss 12) that only falls to ln(10): no learning, no plateau
    assert kinds(_stuck(floor=2.25, start=12.0), "early_plateau") == []
    assert kinds(_stuck(start=12.0), "early_plateau")
    # logged from step 300 on (resumed): no drop seen, no plateau claimed
    assert kinds(_stuck(first=300), "early_plateau") == []


def test_lr_too_low():
    t = np.arange(1500)
    rng = np.random.default_rng(0)
    te = np.arange(0, 1500, 50)
    run = replace(healthy(), loss=(t, (2.3 - 1e-4 * t) * (1 + 0.005 * rng.standard_normal(1500))),
                  val__loss=(te, 2.3 - 1e-4 * te))
    (f,) = kinds(run, "lr_too_low")
    assert "Raise the learning rate from 0.001 to about 0.01" in f.recommendation


def _slow_run(n, ratio, seed=0, config=None):
    """A slow, smooth, nearly flat loss over n steps, layers updating by `ratio` per step."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    tl = np.arange(0, n, 10)
    pts = {"loss": (t, (2.3 - 2e-4 * t) * (1 + 0.005 * rng.standard_normal(n))),
           "lr": (t, np.full(n, 1e-3))}
    for m in ("fc1", "fc2", "out"):
        pts[f"update_ratio/{m}"] = (tl, ratio * np.exp(0.2 * rng.standard_normal(tl.size)))
    return run_of(pts, config)


def test_lr_too_low_early_with_tiny_updates():
    # 120 steps: too early for the loss alone, but every layer moves by ~1e-4 of its weights
    (f,) = kinds(_slow_run(120, 1e-4), "lr_too_low")
    assert f.evidence["fast"] and "Updates far too small" in f.title
    assert "Raise the learning rate" in f.recommendation
    assert kinds(_slow_run(120, 3e-3), "lr_too_low") == []  # updates of the common size
    assert kinds(without(_slow_run(120, 1e-4), "update_ratio/"), "lr_too_low") == []


def test_lr_too_low_silent_when_a_layer_does_not_move():
    # dead or frozen layers (update ratio exactly 0) explain a slow loss; a larger lr won't
    run = _slow_run(1500, 1e-4)
    tl = run.series["update_ratio/fc1"].steps
    run = replace(run, update_ratio__fc1=(tl, np.zeros(tl.size)))
    assert kinds(run, "lr_too_low") == []


def test_lr_too_low_early_path_needs_a_loss_that_never_rose():
    run = _slow_run(120, 1e-4)
    t = np.arange(120)
    loss = np.where((t > 10) & (t < 40), 6.0, 2.3)  # thrown far above its start, then flat
    assert kinds(replace(run, loss=(t, loss)), "lr_too_low") == []


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
    run = replace(healthy(n), loss=(t, loss))
    unknown = RunData(run.series, {k: v for k, v in run.config.items() if k != "batch_size"})
    (f,) = kinds(unknown, "batch_variance")
    assert "Raise the batch size (about 8x)" in f.recommendation
    # the config says batches of 32: not a batch-size problem (a tiny training set
    # being memorised gives such a band), the rule stays silent
    assert kinds(run, "batch_variance") == []


def _early_band(sigma, batch_size, n=150, seed=0):
    """The first 150 steps of a run whose loss has barely left its start (2.3 -> 2.1),
    with batch-to-batch noise of `sigma` relative to the level."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    loss = (2.3 - 0.2 * t / n) * np.exp(sigma * rng.standard_normal(n))
    config = {"n_classes": 10, "lr": 1e-3, "loss": "cross_entropy"}
    if batch_size is not None:
        config["batch_size"] = batch_size
    return run_of({"loss": (t, loss)}, config)


def test_batch_variance_small_batches_are_seen_before_the_loss_falls():
    (f,) = kinds(_early_band(0.1, 2), "batch_variance")
    assert f.evidence["batch_size"] == 2 and f.evidence["width_all"] >= 0.7
    assert "Batches of 2" in f.title and "from 2 to about 32" in f.recommendation
    # The same band without a small configured batch is not enough before the loss falls...
    assert kinds(_early_band(0.1, 32), "batch_variance") == []
    assert kinds(_early_band(0.1, None), "batch_variance") == []
    # ...and a small configured batch alone never is: the band must be wide too.
    assert kinds(_early_band(0.01, 1), "batch_variance") == []


def test_batch_variance_very_wide_band_without_config():
    """Noise far beyond what the fall of the loss explains, in a band not skewed enough
    for the shape test (mean < 1.3x the median), and no batch size in the config."""
    n = 3000
    rng = np.random.default_rng(1)
    t = np.arange(n)
    level = 2.2 * np.exp(-t / 500) + 0.01
    loss = level * np.maximum(0.02, 1 + 1.5 * rng.standard_normal(n))
    run = replace(healthy(n), loss=(t, loss))
    run = type(run)(run.series, {"n_classes": 10}, None)
    (f,) = kinds(run, "batch_variance")
    assert f.evidence["skew"] < 1.3 <= 1.5 <= f.evidence["width"]
    assert "Raise the batch size (about 8x)" in f.recommendation


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


def _val_after_best(after, n=1500, every=25, best_at=300):
    """A run whose training keeps falling and whose validation loss bottoms out at 0.4 at
    `best_at`, then takes the values `after` (relative to 0.4) at the next evaluations."""
    rng = np.random.default_rng(0)
    t = np.arange(n)
    train = (2.3 * np.exp(-t / 100) + 1e-4) * np.exp(0.2 * rng.standard_normal(n))
    te = np.arange(0, best_at + every * len(after) + 1, every)
    before = 2.3 * np.exp(-te[te <= best_at] / 80) + 0.4
    before += 0.4 - before[-1]
    val = np.concatenate([before, 0.4 * np.asarray(after)])
    return replace(healthy(n), loss=(t[:te[-1] + 1], train[:te[-1] + 1]), val__loss=(te, val))


def test_a_steady_validation_rise_needs_less_than_a_bumpy_one():
    steady = [1.005, 1.02, 1.045, 1.07, 1.095, 1.12, 1.13, 1.135, 1.14]  # 12-14%, each up
    (f,) = kinds(_val_after_best(steady), "overfitting")
    assert f.evidence["rising"] >= 0.8 and f.evidence["sustained"] < 0.15
    (g,) = kinds(_val_after_best(steady), "early_stopping_point")
    assert g.severity == "info"  # under 20%: keep the checkpoint, no alarm
    # the same rise with too few evaluations after the best, or as a jump to a flat level
    # (not a trend): it must reach 20% like a bumpy rise
    for after in (steady[-4:], [1.0, 1.135, 1.14, 1.132, 1.138, 1.134, 1.14, 1.133]):
        for kind in ("overfitting", "early_stopping_point"):
            assert kinds(_val_after_best(after), kind) == []


def test_a_bumpy_validation_rise_needs_twenty_percent():
    # small validation sets bump 15-17% above their best and come back: a bumpy rise (no
    # trend) must reach 20%, where the labels' criterion says yes
    bumps = [0.0, 0.07, 0.02, 0.08, 0.03, 0.06, 0.03, 0.07, 0.04]
    low = _val_after_best([1.2 + b for b in bumps])  # 17% above the best
    high = _val_after_best([1.27 + b for b in bumps])  # 24%
    for kind in ("overfitting", "early_stopping_point"):
        assert kinds(low, kind) == []
        (f,) = kinds(high, kind)
        assert f.evidence["rising"] < 0.8
    assert 0.15 < RULES["overfitting"](high)[0].evidence["sustained"] < 0.25


def _memorised(n=1200):
    """Training falls 3000x (a tiny set memorised); validation is best at the first
    evaluation (learned within 20 steps) and only rises from there."""
    t = np.arange(n)
    rng = np.random.default_rng(0)
    train = (0.3 * np.exp(-t / 60) + 1e-4) * np.exp(0.2 * rng.standard_normal(n))
    te = np.arange(0, n, 20)
    val = 0.46 + 0.6 * (1 - np.exp(-te / 300))
    return replace(healthy(n), loss=(t, train), val__loss=(te, val))


def test_early_stopping_point_when_the_first_evaluation_is_the_best():
    (g,) = kinds(_memorised(), "early_stopping_point")
    assert g.evidence["best_step"] == 0 and g.severity == "warning"
    assert kinds(_memorised(), "overfitting")


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


def test_not_learning_not_on_a_slow_start_or_a_memorised_set():
    # noisy labels: flat for 15 steps, then bending down; at 60 steps still < 10% below
    # its start with a weak trend, but the last fifth is well below the first half
    t = np.arange(60)
    rng = np.random.default_rng(0)
    cfg = {"n_classes": 4, "batch_size": 32, "loss": "cross_entropy"}
    level = 1.386 * (1 - 0.12 * np.clip((t - 15) / 60, 0, None) ** 1.5)
    slow = run_of({"loss": (t, level * (1 + 0.03 * rng.standard_normal(60)))}, cfg)
    m = not_learning.measure(slow)
    assert m["progress"] < not_learning.MAX_PROGRESS and m["trend"] < not_learning.MAX_TREND
    assert kinds(slow, "not_learning") == []
    flat = run_of({"loss": (t, 1.386 * (1 + 0.03 * rng.standard_normal(60)))}, cfg)
    assert kinds(flat, "not_learning")
    # validation never beat its first evaluation, but training fell 3000x: overfitting's
    assert not_learning.measure(_memorised())["val_progress"] == 0.0
    assert kinds(_memorised(), "not_learning") == []


def test_not_learning_waits_longer_at_small_batches():
    t = np.arange(120)
    rng = np.random.default_rng(0)
    pts = {"loss": (t, 2.3 * (1 + 0.03 * rng.standard_normal(120)))}
    assert kinds(run_of(pts, {"batch_size": 32}), "not_learning")
    # batch 2: 120 steps are 240 examples, too few to call it stuck (800 steps needed)
    assert kinds(run_of(pts, {"batch_size": 2}), "not_learning") == []
    assert kinds(run_of(pts, {}), "not_learning")  # no batch size: 100 steps
    assert kinds(run_of({"loss": (t[:60], pts["loss"][1][:60])}, {}), "not_learning") == []
    assert kinds(run_of({"loss": (t[:60], pts["loss"][1][:60])}, {"batch_size": 64}),
                 "not_learning")


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


def test_overfitting_needs_a_training_loss_below_its_start():
    # the net blew up right after step 0 (training losses of 1e6 around the best
    # validation step) and came back to chance while validation exploded: nothing was
    # memorised, so it is not overfitting (divergence and nan rules speak for it)
    t = np.arange(700)
    train = np.where((t > 5) & (t < 40), 1e6, 2.3 + 0.02 * np.sin(t))
    tv = np.arange(0, 700, 20)
    val = np.where(tv == 0, 2.22, 2.3 * 10.0 ** (tv / 50.0))
    run = run_of({"loss": (t, train), "val/loss": (tv, val)},
                 {"n_classes": 10, "batch_size": 32, "loss": "cross_entropy"})
    assert kinds(run, "overfitting") == []
