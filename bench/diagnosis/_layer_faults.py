"""The injected faults for the layer rules of the benchmark (see _faults.py for labels)."""

from __future__ import annotations

from _faults import HIGH_LR_EFFECTS, TANH, _may
from _train import Spec


def update_ratio():
    """Updates far below 1e-3 of the weights: plain SGD at 1e-5 or 3e-6. (Far above is not in
    the benchmark: on these nets updates that large blow the run up within a few steps.)"""
    kw = dict(family="updates", must=("update_ratio",), may=("lr_too_low", "not_learning"),
              onset=0, opt="sgd")
    return [
        Spec("updates-sgd1e-5-mlp", seed=0, lr=1e-5, steps=600, **kw),
        Spec("updates-sgd1e-5-cnn", seed=1, model="cnn", lr=1e-5, steps=500, **kw),
        Spec("updates-sgd1e-5-moons", seed=2, data="moons", lr=1e-5, steps=600, **kw),
        Spec("updates-sgd3e-6-gru", seed=3, data="seq", model="gru", lr=3e-6, steps=500, **kw),
        Spec("updates-sgd3e-6-cancer", seed=4, data="cancer", lr=3e-6, steps=400,
             eval_every=10, **kw),
        Spec("updates-sgd3e-6-hard", seed=5, data="hard", lr=3e-6, steps=600, **kw),
    ]


def vanishing_gradients():
    """Deep sigmoid (6-10 layers) or deep tanh (16 layers) MLPs."""
    kw = dict(family="vanishing", must=("vanishing_gradients",),
              may=("not_learning", "lr_too_low", "early_plateau", "saturated_activations",
                   "update_ratio", "loss_at_init"), onset=0)

    def deep(depth, act, width=32):
        return dict(model_kw=dict(depth=depth, width=width, act=act))

    return [
        Spec("vanish-sigmoid8-sgd", seed=0, opt="sgd", lr=0.1, momentum=0.9, steps=800,
             **deep(8, "sigmoid"), **kw),
        Spec("vanish-sigmoid10-adam", seed=1, lr=1e-3, steps=800, **deep(10, "sigmoid"), **kw),
        Spec("vanish-sigmoid6-sgd", seed=2, opt="sgd", lr=0.05, momentum=0.9, steps=800,
             **deep(6, "sigmoid", 64), **kw),
        Spec("vanish-sigmoid8-cancer", seed=3, data="cancer", opt="sgd", lr=0.1, steps=500,
             eval_every=10, **deep(8, "sigmoid"), **kw),
        Spec("vanish-sigmoid8-moons", seed=4, data="moons", opt="sgd", lr=0.1, momentum=0.9,
             steps=800, **deep(8, "sigmoid"), **kw),
        Spec("vanish-tanh16-sgd", seed=5, opt="sgd", lr=0.01, steps=800, **deep(16, "tanh"),
             **kw),
    ]


def saturated_activations():
    """Sigmoid/tanh MLPs with hidden weights x6, inputs x3-30, or Adam at lr 0.1."""
    kw = dict(family="saturated", must=("saturated_activations",), onset=0,
              may=("vanishing_gradients", "not_learning", "lr_too_low", "loss_at_init",
                   "early_plateau", "lr_oscillation", "update_ratio", "batch_variance",
                   "overfitting", "early_stopping_point", "val_plateau", "exploding_gradients"))
    sig = dict(model_kw=dict(act="sigmoid"))
    return [
        Spec("sat-tanh-bigall", seed=0, init="big_all", steps=700, **TANH, **kw),
        Spec("sat-sigmoid-bigall", seed=1, init="big_all", steps=700, data_kw=dict(scale=3.0),
             **sig, **kw),
        Spec("sat-tanh-adam0.1", seed=2, lr=0.1, steps=700, **TANH, **kw),
        Spec("sat-sigmoid-inputs30", seed=3, data="cancer", data_kw=dict(scale=30.0),
             steps=500, eval_every=10, **sig,
             **dict(kw, must=("saturated_activations", "unscaled_inputs"))),
        Spec("sat-tanh-bigall-moons", seed=4, data="moons", init="big_all", steps=700, **TANH,
             **kw),
        Spec("sat-sigmoid-bigall-s5", seed=5, init="big_all", steps=700,
             data_kw=dict(scale=3.0), **sig, **kw),
    ]


def unscaled_inputs():
    """Standardised features then x255 / x1000, or shifted by +50..+1000."""
    may = _may(*HIGH_LR_EFFECTS, "loss_at_init", "not_learning", "overfitting",
               but=("unscaled_inputs",))
    kw = dict(family="unscaled", must=("unscaled_inputs",), may=may, onset=0)
    return [
        Spec("unscaled-x1000-mlp", seed=0, data_kw=dict(scale=1000.0), steps=700, **kw),
        Spec("unscaled-offset100-mlp", seed=1, data_kw=dict(offset=100.0), steps=700, **kw),
        Spec("unscaled-x1000-cancer", seed=2, data="cancer", data_kw=dict(scale=1000.0),
             steps=400, eval_every=10, **kw),
        Spec("unscaled-offset50-moons", seed=3, data="moons", data_kw=dict(offset=50.0),
             steps=700, **kw),
        Spec("unscaled-x255-cnn", seed=4, model="cnn", data_kw=dict(scale=255.0), steps=500,
             **kw),
        Spec("unscaled-offset1000-hard", seed=5, data="hard", data_kw=dict(offset=1000.0),
             steps=700, **kw),
    ]


def dead_relu():
    """ReLU nets at a far too high lr (plain SGD 1-3, Adam 0.1), or hidden biases at -4."""
    kw = dict(family="deadrelu", must=("dead_relu",), onset=0,
              may=_may(*HIGH_LR_EFFECTS, "not_learning", but=("dead_relu",)))
    return [
        Spec("dead-sgd3-mlp", seed=0, opt="sgd", lr=3.0, steps=700, **kw),
        Spec("dead-adam0.1-mlp", seed=1, lr=0.1, steps=700, **kw),
        Spec("dead-negbias-mlp", seed=2, init="neg_bias", steps=700, **kw),
        Spec("dead-sgd1-cnn", seed=3, model="cnn", opt="sgd", lr=1.0, steps=500, **kw),
        Spec("dead-sgd3-moons", seed=4, data="moons", opt="sgd", lr=3.0, steps=700, **kw),
        Spec("dead-negbias-cancer", seed=5, data="cancer", init="neg_bias", steps=400,
             eval_every=10, **kw),
    ]


def symmetric_init():
    """Every Linear layer's weights and biases initialised to zero."""
    kw = dict(family="symmetric", must=("symmetric_init",), init="zero", onset=0,
              may=("not_learning", "dead_relu", "lr_too_low", "update_ratio", "early_plateau",
                   "saturated_activations", "vanishing_gradients", "loss_at_init"))
    return [
        Spec(f"symmetric-zero-{act}", seed=seed, steps=600, model_kw=dict(act=act), **kw)
        for seed, act in enumerate(("relu", "sigmoid", "tanh"))
    ] + [
        Spec("symmetric-zero-relu-cancer", seed=3, data="cancer", steps=300, eval_every=10,
             **kw),
        Spec("symmetric-zero-relu-moons", seed=4, data="moons", steps=500, **kw),
        Spec("symmetric-zero-tanh-wine", seed=5, data="wine", steps=200, bs=16, eval_every=5,
             model_kw=dict(act="tanh"), **kw),
    ]


def exploding_gradients():
    """A data bug: from some step on, every 7th batch arrives unnormalised (x1000). ReLU nets
    only: saturating tanh/sigmoid layers clamp the resulting gradients."""
    may = _may(*HIGH_LR_EFFECTS, "not_learning", "overfitting", "loss_at_init",
               but=("exploding_gradients",))
    kw = dict(family="exploding", must=("exploding_gradients",), may=may)
    return [
        Spec("explode-corrupt-mlp", seed=0, steps=700, corrupt_from=200, onset=200, **kw),
        Spec("explode-corrupt-wide", seed=1, steps=700, corrupt_from=200,
             model_kw=dict(width=256), opt="sgd", lr=0.03, momentum=0.9, onset=200, **kw),
        Spec("explode-corrupt-cnn", seed=2, model="cnn", steps=600, corrupt_from=250,
             onset=250, **kw),
        Spec("explode-corrupt-deep", seed=3, steps=600, corrupt_from=150,
             model_kw=dict(depth=4), onset=150, **kw),
        Spec("explode-corrupt-moons", seed=4, data="moons", steps=700, corrupt_from=300,
             onset=300, **kw),
        Spec("explode-corrupt-hard", seed=5, data="hard", steps=700, corrupt_from=250,
             onset=250, **kw),
    ]


LAYER_FAULTS = (update_ratio, vanishing_gradients, saturated_activations, unscaled_inputs,
                dead_relu, symmetric_init, exploding_gradients)
