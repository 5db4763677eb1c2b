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


def _with_batch_size(run, batch_size):
    config = {k: v for k, v in run.config.items() if k != "batch_size"}
    if batch_size is not None:
        config["batch_size"] = batch_size
    return type(run)(run.series, config, run.total_steps)


def test_batch_variance_sees_batches_of_one_in_the_first_5_percent():
    run = tracefile.load_run("bv-bs1-adam-mlp")
    early = run.until(75)  # 5% of the run: the loss is still at 95% of its start
    (f,) = RULES["batch_variance"](early)
    assert f.evidence["batch_size"] == 1 and "Batches of 1" in f.title
    # Without the configured batch size the band alone waits for the loss to fall.
    assert RULES["batch_variance"](_with_batch_size(early, None)) == []
    assert RULES["batch_variance"](_with_batch_size(run, None))


def test_batch_variance_small_batch_in_the_config_is_not_enough_alone():
    """A healthy run whose config claimed batches of 2: its band is not wide enough."""
    run = _with_batch_size(tracefile.load_run("healthy-mlp-digits-adam-s0"), 2)
    for cut in range(50, run.last_step + 1, run.last_step // 20):
        assert RULES["batch_variance"](run.until(cut)) == [], cut


@pytest.mark.parametrize("kind,name", [("lr_too_low", "low-sgd1e-3-mlp"),
                                       ("lr_too_low", "low-adam3e-5-gru"),
                                       ("not_learning", "notlearn-frozen-cnn"),
                                       ("not_learning", "notlearn-frozen-mlp")])
def test_reported_within_a_tenth_of_the_run(kind, name):
    run = tracefile.load_run(name)
    assert RULES[kind](run.until(run.last_step // 10 + 1))


@pytest.mark.parametrize("kind,name,draw", [("lr_too_low", "dead-negbias-cancer", 200),
                                            ("not_learning", "bv-bs2-sgd-mlp", 400)])
def test_no_false_alarm_on_lookalikes(kind, name, draw):
    # a mostly dead net learns slowly (its layers do not move: not the lr); a batch-2 run
    # hovers near its start for a while (it has seen few examples yet). Both fired once.
    run = tracefile.load_run(name, tracefile.draw_dir(draw))
    for frac in (0.1, 0.2, 0.5, 0.8, 1.0):
        assert RULES[kind](run.until(int(frac * run.last_step))) == []


@pytest.mark.parametrize("kind,name,draw", [
    # training fell only 1.3-1.5x after the best validation step (already near zero there)
    ("overfitting", "healthy-mlp-cancer-adam-s1", 1000),
    ("overfitting", "healthy-mlp-wine-adam-s2", 1200),
    # the first evaluation (step 0, after the net had learned moons) was the best
    ("early_stopping_point", "overfit-moons60", 1000)])
def test_validation_rise_reported_on_later_draws(kind, name, draw):
    assert RULES[kind](tracefile.load_run(name, tracefile.draw_dir(draw)))


def test_not_learning_quiet_on_a_slow_start_and_on_memorisation():
    # 15% flipped labels: 5-8% below the start for the first 50-70 steps (it fired at 70)
    run = tracefile.load_run("healthy-mlp-hard-adam-s2", tracefile.draw_dir(1200))
    for cut in range(50, 141, 2):
        assert RULES["not_learning"](run.until(cut)) == [], cut
    # validation never beat its first evaluation while training memorised 60 examples
    run = tracefile.load_run("overfit-moons60", tracefile.draw_dir(1000))
    for frac in (0.1, 0.2, 0.5, 1.0):
        assert RULES["not_learning"](run.until(int(frac * run.last_step))) == []


def test_lr_oscillation_reported_after_four_evaluations():
    # validation every 5% of the run: 0.44, 0.30, 0.19, 0.26 by 15% of it; a healthy run on
    # the same data falls smoothly there
    run = tracefile.load_run("osc-adam0.1-moons-s1")
    (f,) = RULES["lr_oscillation"](run.until(150))
    assert "back and forth" in f.title
    healthy = tracefile.load_run("healthy-mlp-moons-adam-s0")
    for frac in (0.15, 0.2, 0.3, 0.5, 1.0):
        assert RULES["lr_oscillation"](healthy.until(int(frac * healthy.last_step))) == []


def test_early_plateau_drifting_a_little_after_a_very_fast_drop():
    # plateau at 0.2 for 95% of the run, drifting ~15% down: flat next to the first 3% of
    # the run, where it fell from ln(2); healthy runs on moons still fall at 1-9% of it
    (f,) = RULES["early_plateau"](tracefile.load_run("plateau-adam0.03-moons-s8"))
    assert f.evidence["flat_drop"] > 0.1 and f.evidence["slope_ratio"] < 0.005


def test_divergence_not_fooled_by_batch_size_one_swings():
    """Batch-1 bucket medians swing 3x from bucket to bucket at 3 points a bucket; the best
    level is a median of >= 30 batch losses, so one lucky stretch is not a best to rise from
    (this prefix of a tuning run fired before)."""
    run = tracefile.load_run("bv-bs1-adam-mlp", tracefile.draw_dir(600)).until(225)
    assert RULES["divergence"](run) == []
