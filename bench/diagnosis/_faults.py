"""The injected faults of the benchmark (curve rules; layer rules in _layer_faults.py):
one function per family, six runs or so each.

`must`: the kinds the fault produces and a rule set must report. `may`: kinds the fault
also legitimately causes (a learning rate 1000x too high kills ReLUs, explodes gradients
and ruins validation at once); a finding of those kinds on that run is neither a hit nor
a false alarm. `onset`: the step the fault starts, where it is known.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from _train import Spec

HIGH_LR_EFFECTS = ("exploding_gradients", "update_ratio", "dead_relu", "early_stopping_point",
                   "val_plateau", "saturated_activations", "lr_oscillation", "divergence",
                   "nan_loss", "batch_variance", "early_plateau", "vanishing_gradients")
SGD = dict(opt="sgd", lr=0.05, momentum=0.9)
TANH = dict(model_kw=dict(act="tanh"))


def _after(at: int, factor: float, s: int) -> float:
    return 1.0 if s < at else factor


def _ramp(at: int, rate: float, s: int) -> float:
    return 1.0 if s < at else rate ** (s - at)


def _exp(gamma: float, s: int) -> float:
    return gamma ** s


def _to_zero(at: int, s: int) -> float:
    return max(0.0, 1.0 - s / at)


def _best_val_step(series) -> int:
    steps, values = series["val/loss"]
    return int(steps[int(np.nanargmin(values))])


def _may(*kinds: str, but: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(k for k in dict.fromkeys(kinds) if k not in but)


def nan_loss():
    """The lr multiplied by 5000 mid-run, or one batch carrying a NaN feature."""
    kw = dict(family="nan", must=("nan_loss",), may=_may(*HIGH_LR_EFFECTS, but=("nan_loss",)))
    spike = partial(_after, 300, 5000.0)
    return [
        Spec("nan-lrspike-mlp", seed=0, steps=800, schedule=spike, onset=300, **SGD, **kw),
        Spec("nan-lrspike-cnn", seed=1, model="cnn", steps=600, schedule=spike, onset=300,
             **SGD, **kw),
        Spec("nan-lrspike-moons", seed=2, data="moons", steps=700, schedule=spike, onset=300,
             **SGD, **kw),
        Spec("nan-databatch-mlp", seed=3, steps=700, nan_batch_at=250, onset=250, **kw),
        Spec("nan-databatch-cnn", seed=4, model="cnn", steps=500, nan_batch_at=200, onset=200,
             **kw),
        Spec("nan-databatch-moons", seed=5, data="moons", steps=700, nan_batch_at=300,
             onset=300, **kw),
        Spec("nan-databatch-cancer", seed=6, data="cancer", steps=400, nan_batch_at=150,
             eval_every=10, onset=150, **kw),
    ]


def divergence():
    """The lr x30-100 mid-run, or a warm-up that never stops (+1% per step from step 200:
    the loss blows up once the lr is far too high; when exactly is not known)."""
    may = _may(*HIGH_LR_EFFECTS, "not_learning", but=("divergence",))
    kw = dict(family="divergence", must=("divergence",), may=may)
    ramp = dict(schedule=partial(_ramp, 200, 1.01), family="divergence", must=("divergence",),
                # the ramp starts from a low lr (0.01, plain SGD): slow at first
                may=may + ("lr_too_low",))
    return [
        Spec("div-lrspike-mlp", seed=0, steps=800, schedule=partial(_after, 400, 30.0),
             onset=400, **SGD, **kw),
        Spec("div-lrspike-cnn", seed=1, model="cnn", steps=600,
             schedule=partial(_after, 250, 100.0), onset=250, **SGD, **kw),
        Spec("div-lrspike-gru", seed=3, data="seq", model="gru", steps=600,
             schedule=partial(_after, 250, 100.0), onset=250, **SGD, **kw),
        Spec("div-lrramp-tanh", seed=2, steps=900, lr=1e-3, schedule=partial(_ramp, 300, 1.01),
             onset=None, **TANH, **kw),
        Spec("div-lrramp-mlp", seed=4, steps=900, opt="sgd", lr=0.01, **ramp),
        Spec("div-lrramp-sgdtanh", seed=5, steps=900, opt="sgd", lr=0.01, **TANH, **ramp),
        Spec("div-lrramp-cnn", seed=6, model="cnn", steps=800, opt="sgd", lr=0.01, **ramp),
        Spec("div-lrramp-gru", seed=7, data="seq", model="gru", steps=800, opt="sgd", lr=0.05,
             **ramp),
    ]


def lr_oscillation():
    """Adam at lr 0.1 on a tanh MLP for two-moons: the loss bounces and never settles."""
    may = _may(*HIGH_LR_EFFECTS, "not_learning", "overfitting", but=("lr_oscillation",))
    return [Spec(f"osc-adam0.1-moons-s{seed}", "oscillation", seed, data="moons", lr=0.1,
                 steps=1000, must=("lr_oscillation",), may=may, onset=0, **TANH)
            for seed in range(6)]


def early_plateau():
    """Adam at lr 0.03-0.05 (tanh, two-moons): a fast drop, then stuck above the healthy
    runs' level (about 0.12)."""
    may = _may(*HIGH_LR_EFFECTS, "overfitting", but=("early_plateau",))
    return [Spec(f"plateau-adam{lr}-moons-s{seed}", "plateau", seed, data="moons", lr=lr,
                 steps=1000, must=("early_plateau",), may=may, **TANH)
            for lr, seed in ((0.03, 4), (0.05, 5), (0.03, 6), (0.05, 7), (0.03, 8), (0.05, 9))]


def lr_too_low():
    """Plain SGD at 1e-3 or Adam at 1e-5..3e-5: a few % of progress in the whole run (which
    also reads as not_learning early on)."""
    kw = dict(family="lowlr", must=("lr_too_low",), may=("update_ratio", "not_learning"),
              onset=0)
    return [
        Spec("low-sgd1e-3-mlp", seed=0, opt="sgd", lr=1e-3, steps=1200, **kw),
        Spec("low-sgd2e-3-cnn", seed=1, model="cnn", opt="sgd", lr=2e-3, steps=800, **kw),
        Spec("low-adam1e-5-mlp", seed=2, lr=1e-5, steps=1200, **kw),
        Spec("low-adam3e-5-gru", seed=3, data="seq", model="gru", lr=3e-5, steps=700, **kw),
        Spec("low-sgd1e-2-lstm", seed=4, data="seq", model="lstm", opt="sgd", lr=1e-2,
             steps=700, **kw),
        Spec("low-sgd1e-3-moons", seed=5, data="moons", opt="sgd", lr=1e-3, steps=1200, **kw),
    ]


def batch_variance():
    """Batches of 1 or 2 examples."""
    kw = dict(family="batchvar", must=("batch_variance",),
              may=("lr_oscillation", "update_ratio", "early_plateau"), onset=0)
    return [
        Spec("bv-bs1-adam-mlp", seed=0, bs=1, steps=1500, **kw),
        Spec("bv-bs2-sgd-mlp", seed=1, bs=2, opt="sgd", lr=0.01, steps=1500,
             **dict(kw, may=kw["may"] + ("lr_too_low",))),
        Spec("bv-bs2-adam-cnn", seed=2, model="cnn", bs=2, steps=1000, **kw),
        Spec("bv-bs1-adam-moons", seed=3, data="moons", bs=1, lr=3e-3, steps=1500, **kw),
        Spec("bv-bs1-sgd-cancer", seed=4, data="cancer", bs=1, opt="sgd", lr=0.01, steps=1000,
             eval_every=25, **kw),
        Spec("bv-bs2-adam-gru", seed=5, data="seq", model="gru", bs=2, lr=1e-3, steps=1200,
             **kw),
    ]


def overfitting():
    """Tiny training sets (20-100 examples), wide nets, many epochs."""
    kw = dict(family="overfit", must=("overfitting", "early_stopping_point"),
              may=("val_plateau",), onset=_best_val_step)
    wide = dict(width=256)
    return [
        Spec("overfit-digits100-s0", seed=0, data_kw=dict(n_train=100), model_kw=wide,
             lr=1e-3, steps=2000, eval_every=25, **kw),
        Spec("overfit-digits100-s1", seed=1, data_kw=dict(n_train=100), model_kw=wide,
             lr=1e-3, steps=2000, eval_every=25, **kw),
        Spec("overfit-digits50-cnn", seed=4, model="cnn", data_kw=dict(n_train=50), lr=1e-3,
             steps=1500, eval_every=25, **kw),
        Spec("overfit-cancer40", seed=2, data="cancer", data_kw=dict(n_train=40),
             model_kw=wide, lr=1e-3, steps=1000, bs=16, eval_every=20, **kw),
        Spec("overfit-moons60", seed=3, data="moons", data_kw=dict(n_train=60), model_kw=wide,
             lr=3e-3, steps=1200, bs=16, eval_every=20, **kw),
        Spec("overfit-hard200", seed=5, data="hard", data_kw=dict(n_train=200), model_kw=wide,
             lr=1e-3, steps=1200, eval_every=25, **kw),
    ]


def val_plateau():
    """Tiny training set held back by dropout 0.5 and weight decay: validation flattens
    early and stays flat."""
    reg = dict(width=128, dropout=0.5)
    return [Spec(f"valplateau-digits60-s{seed}", "valplateau", seed, data_kw=dict(n_train=60),
                 model_kw=reg, opt="sgd", lr=0.05, momentum=0.9, weight_decay=1e-2,
                 steps=1200, eval_every=25, must=("val_plateau",),
                 may=("early_stopping_point",))
            for seed in range(6)]


def not_learning():
    """The optimizer holds a copy of the model (nothing moves), or shuffled labels."""
    kw = dict(family="notlearning", must=("not_learning",), may=("update_ratio", "overfitting"),
              onset=0)
    return [
        Spec("notlearn-frozen-mlp", seed=0, frozen=True, steps=700, **kw),
        Spec("notlearn-frozen-cnn", seed=1, model="cnn", frozen=True, steps=500, **kw),
        Spec("notlearn-frozen-gru", seed=4, data="seq", model="gru", frozen=True, steps=500,
             **kw),
        Spec("notlearn-shuffled-hard", seed=2, data="hard", data_kw=dict(shuffle_labels=True),
             model_kw=dict(width=16), steps=1000, **kw),
        Spec("notlearn-shuffled-digits", seed=3, data_kw=dict(shuffle_labels=True), steps=1000,
             **dict(kw, may=kw["may"] + ("early_stopping_point",))),
        Spec("notlearn-shuffled-moons", seed=5, data="moons", data_kw=dict(shuffle_labels=True),
             model_kw=dict(width=16), steps=1000, **kw),
    ]


def loss_at_init():
    """The output layer scaled so the initial logits have std 10, or its bias spread over
    [-8, 8]. An output far off at init saturates softmax and starves upstream layers for a
    while."""
    kw = dict(family="lossinit", must=("loss_at_init",),
              may=("vanishing_gradients", "saturated_activations"), onset=0)
    return [
        Spec("init-biglast-mlp", seed=0, init="big_last", steps=600, **kw),
        Spec("init-bigbias-mlp", seed=1, init="big_bias", steps=600, **kw),
        Spec("init-biglast-cnn", seed=2, model="cnn", init="big_last", steps=500, **kw),
        Spec("init-bigbias-gru", seed=3, data="seq", model="gru", init="big_bias", lr=3e-3,
             steps=500, **kw),
        Spec("init-biglast-lstm", seed=4, data="seq", model="lstm", init="big_last", lr=3e-3,
             steps=500, **kw),
        Spec("init-bigbias-wine", seed=5, data="wine", init="big_bias", lr=3e-3, bs=16,
             steps=200, eval_every=5, **kw),
    ]


def lr_decay_too_early():
    """Step decay x0.01 at 3-5% of the run, exponential decay 0.99 per step, or a schedule
    that reaches 0 at 10% of the run."""
    kw = dict(family="decay", must=("lr_decay_too_early",),
              may=("update_ratio", "lr_too_low", "early_plateau", "val_plateau", "not_learning"))
    return [
        Spec("decay-step5pct-mlp", seed=0, steps=1200, schedule=partial(_after, 60, 0.01),
             onset=60, **SGD, **kw),
        Spec("decay-exp-mlp", seed=1, steps=1200, schedule=partial(_exp, 0.99), onset=230,
             **SGD, **kw),
        Spec("decay-tozero-cnn", seed=2, model="cnn", lr=1e-3, steps=800,
             schedule=partial(_to_zero, 80), onset=72, **kw),
        Spec("decay-step-gru", seed=3, data="seq", model="gru", lr=3e-3, steps=600,
             schedule=partial(_after, 40, 1e-3), onset=40, **kw),
        Spec("decay-step3pct-cnn", seed=4, model="cnn", steps=900,
             schedule=partial(_after, 30, 0.01), onset=30, **SGD, **kw),
        Spec("decay-exp-moons", seed=5, data="moons", lr=3e-3, steps=1000,
             schedule=partial(_exp, 0.985), onset=154, **kw),
    ]


CURVE_FAULTS = (nan_loss, divergence, lr_oscillation, early_plateau, lr_too_low,
                batch_variance, overfitting, val_plateau, not_learning, loss_at_init,
                lr_decay_too_early)
