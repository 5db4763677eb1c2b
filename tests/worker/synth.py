"""Synthetic runs for the diagnosis tests: a healthy baseline and one fault at a time."""

from __future__ import annotations

import numpy as np

from worker.diagnosis import RULES, RunData, SeriesData

LAYERS = ("fc1", "fc2", "out")


def kinds(run: RunData, kind: str) -> list:
    """The findings of rule `kind` on `run` (each checked to be of that kind)."""
    found = RULES[kind](run)
    assert all(f.kind == kind for f in found)
    return found


def _s(steps, values) -> SeriesData:
    return SeriesData(np.asarray(steps), np.asarray(values, dtype=np.float64))


def healthy_points(n: int = 1500, seed: int = 0, eval_every: int = 50,
                   layer_every: int = 10) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A healthy 10-class run: fast, bending decrease with mild batch noise; layers fine."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 2.2 * np.exp(-t / (0.08 * n)) + 0.08 + 0.02 * np.exp(-t / (0.5 * n))
    loss = level * np.exp(0.25 * rng.standard_normal(n))
    te = np.arange(0, n, eval_every)
    val = 2.2 * np.exp(-te / (0.08 * n)) + 0.15 + 0.003 * rng.standard_normal(te.size)
    tl = np.arange(0, n, layer_every)
    pts = {"loss": (t, loss), "val/loss": (te, val), "lr": (t, np.full(n, 1e-3))}
    decay = 0.3 * np.exp(-tl / (0.3 * n)) + 0.05
    for i, m in enumerate(LAYERS):
        noise = np.exp(0.2 * rng.standard_normal(tl.size))
        pts[f"grad_norm/{m}"] = (tl, decay * (0.5 + 0.5 * i) * noise)
        pts[f"weight_norm/{m}"] = (tl, np.full(tl.size, 4.0 + i) + 0.001 * tl / n)
        pts[f"update_ratio/{m}"] = (tl, 1e-3 * np.exp(0.3 * rng.standard_normal(tl.size)))
    pts["grad_norm"] = (tl, np.sqrt(sum(pts[f"grad_norm/{m}"][1] ** 2 for m in LAYERS)))
    pts["grad_nonfinite"] = (tl, np.zeros(tl.size))
    pts["act_zero_frac/act1"] = (tl, 0.5 + 0.02 * rng.standard_normal(tl.size))
    pts["act_sat_frac/act2"] = (tl, np.clip(0.05 + 0.01 * rng.standard_normal(tl.size), 0, 1))
    pts["input/mean"] = (tl, 0.01 * rng.standard_normal(tl.size))
    pts["input/std"] = (tl, 1.0 + 0.01 * rng.standard_normal(tl.size))
    return pts


CONFIG = {"n_classes": 10, "batch_size": 32, "lr": 1e-3, "loss": "cross_entropy"}


def run_of(points, config=None, total_steps=None) -> RunData:
    """A RunData from {key: (steps, values)}; the default config is a 10-class CE run."""
    return RunData({k: _s(*sv) for k, sv in points.items()},
                   dict(CONFIG if config is None else config), total_steps)


def healthy(n: int = 1500, seed: int = 0, **kw) -> RunData:
    return run_of(healthy_points(n, seed, **kw))


def only(run: RunData, *keys: str) -> RunData:
    """The run with only the series whose key starts with one of `keys`."""
    return RunData({k: s for k, s in run.series.items() if k.startswith(keys)}, run.config,
                   run.total_steps)


def without(run: RunData, *keys: str) -> RunData:
    """The run without the series whose key starts with one of `keys`."""
    return RunData({k: s for k, s in run.series.items() if not k.startswith(keys)},
                   run.config, run.total_steps)


def replace(run: RunData, **series: tuple[np.ndarray, np.ndarray]) -> RunData:
    """The run with some series replaced (keyword names use `__` for `/`)."""
    new = dict(run.series)
    for key, (steps, values) in series.items():
        new[key.replace("__", "/")] = _s(steps, values)
    return RunData(new, run.config, run.total_steps)
