"""lr_oscillation: the loss swings up and down with no downward trend.

Tip: seeds/003 (too large a learning rate oscillates and never converges).
Judged over the recent half of the run, with the loss still a good share of its start
level (for cross-entropy, of ln(n_classes) when the first steps already jumped above it).
With `val/loss`: the validation loss (a fixed set, so no batch sampling noise) moves back
and forth between evaluations far more than a converging run's does, and does not fall;
the evaluation at the start is left out (the first drop is no swing), and a window with
too few evaluations is widened to the last few, so a run evaluated every 5% is judged
after four evaluations. Without it: the smoothed training loss wanders around its trend
much more than batch noise alone would make a bucket median wander, and does not fall.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import Curve, curve, half_change
from worker.diagnosis.findings import Finding, lr_advice, num, pct, step
from worker.diagnosis.rules._val import val_window
from worker.diagnosis.rules.loss_at_init import expected_init_loss
from worker.diagnosis.series import RunData

KIND = "lr_oscillation"
WINDOW_FRAC = 0.5  # judge the recent half of the run
MIN_WINDOW_BUCKETS = 12  # smoothed training points in the window, at least
MIN_STEPS = 100  # and this many steps in the run
MIN_LEVEL_OF_START = 0.3  # the loss is still >= 30% of its start level (or of ln(n_classes))
MAX_DROP = 0.1  # falling: the window's second half is >= 10% below its first (medians)...
TREND_OVER_SWING = 1.5  # ...by more than 1.5x the swings themselves (else it is a swing)
VAL_EVALS = 3  # validation evaluations judged at least (the first one never counts)
VAL_SWING = 0.15  # validation moves back and forth >= 15% of its level per evaluation...
TRAIN_SWING = 0.08  # ...or, without validation, training swings >= 8% of the level
TRAIN_EXCESS = 3.0  # and >= 3x what batch noise gives a bucket median


def _reference(run: RunData, c: Curve) -> float:
    """The start level, or ln(n_classes) for cross-entropy when that is lower (with a step
    size this large the first logged losses may already have jumped above the init loss)."""
    expected = expected_init_loss(run)
    return c.start if expected is None else min(c.start, expected)


def _val_back_and_forth(run: RunData, s0: float) -> tuple[float, float] | None:
    """(back_and_forth, trend) of the validation loss over steps >= `s0`, or None.

    The window is widened to the last VAL_EVALS evaluations and never holds the first one.
    back_and_forth: the path the evaluations travel minus their net change, per interval
    between two evaluations, relative to their median (0 for a curve that only falls or
    only rises; alternating +-x around a flat level gives about 2x). The window always
    holds >= VAL_EVALS evaluations, as the first of >= VAL_EVALS + 1 is never among the
    last VAL_EVALS. trend: the change of the
    median from the window's first half to its second, relative (swings cannot fake it).
    """
    win = val_window(run, s0, VAL_EVALS, skip_first=True)
    if win is None:
        return None
    y = win[1]
    level = float(np.median(y))
    if level <= 0:
        return None
    d = np.diff(y)
    path = float(np.abs(d).sum() - abs(float(y[-1] - y[0])))
    return path / d.size / level, half_change(y)


def measure(run: RunData) -> dict | None:
    """Swing, trend and level statistics of the recent window, or None without data."""
    c = curve(run, "loss")
    if c is None or c.span < MIN_STEPS:
        return None
    s0 = c.at_frac(1.0 - WINDOW_FRAC)
    m = c.b.step >= s0
    if m.sum() < MIN_WINDOW_BUCKETS:
        return None
    level = float(np.median(c.b.median[m]))
    if level <= 0:
        return None
    swing, excess = c.swing(s0, c.last_step)
    x0 = int(c.b.step[m][0])
    out = {"level": level, "start": _reference(run, c), "swing": swing / level,
           "excess": excess, "trend": half_change(c.values[c.steps >= s0]),
           "window_start": x0, "last_step": c.last_step}
    val = _val_back_and_forth(run, s0)
    if val is not None:
        out["val_swing"], out["val_trend"] = val
    return out


def _falling(trend: float, swing: float) -> bool:
    return trend <= -MAX_DROP and -trend >= TREND_OVER_SWING * swing


def rule(run: RunData) -> list[Finding]:
    """Fire on large swings without a falling trend, far above zero."""
    m = measure(run)
    if (m is None or m["level"] < MIN_LEVEL_OF_START * m["start"]
            or _falling(m["trend"], m["swing"])):
        return []
    if "val_swing" in m:
        if m["val_swing"] < VAL_SWING or _falling(m["val_trend"], m["val_swing"]):
            return []
        what = f"validation loss moving back and forth by {pct(m['val_swing'])} an evaluation"
    elif m["swing"] >= TRAIN_SWING and m["excess"] >= TRAIN_EXCESS:
        what = f"swings of {pct(m['swing'])}"
    else:
        return []
    title = (f"Loss oscillating around {num(m['level'])} since step {step(m['window_start'])}: "
             f"{what} with no downward trend")
    rec = (f"{lr_advice(run, 0.3, 'Lower')}, or use an adaptive optimizer "
           f"(Adam at 1e-3 or 3e-4).")
    return [Finding(KIND, "warning", m["window_start"], m["last_step"], None, title, rec, m)]
