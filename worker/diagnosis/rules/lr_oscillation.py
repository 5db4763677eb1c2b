"""lr_oscillation: the loss swings up and down with no downward trend.

Tip: seeds/003 (too large a learning rate oscillates and never converges).
Judged over the recent half of the run, with the loss still a good share of its start
level. With `val/loss`: the validation loss (a fixed set, so no batch sampling noise)
wanders far around its trend and does not fall. Without it: the smoothed training loss
wanders around its trend much more than batch noise alone would make a bucket median
wander, and does not fall.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve, half_change
from worker.diagnosis.findings import Finding, lr_advice, num, pct, step
from worker.diagnosis.rules._val import val_swing
from worker.diagnosis.series import RunData

KIND = "lr_oscillation"
WINDOW_FRAC = 0.5  # judge the recent half of the run
MIN_WINDOW_BUCKETS = 12  # smoothed training points in the window, at least
MIN_STEPS = 100  # and this many steps in the run
MIN_LEVEL_OF_START = 0.3  # the loss is still >= 30% of its start level
MAX_DROP = 0.1  # falling: the window's second half is >= 10% below its first (medians)...
TREND_OVER_SWING = 1.5  # ...by more than 1.5x the swings themselves (else it is a swing)
VAL_SWING = 0.15  # validation swings >= 15% of its level...
TRAIN_SWING = 0.08  # ...or, without validation, training swings >= 8% of the level
TRAIN_EXCESS = 3.0  # and >= 3x what batch noise gives a bucket median


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
    out = {"level": level, "start": c.start, "swing": swing / level, "excess": excess,
           "trend": half_change(c.values[c.steps >= s0]),
           "window_start": x0, "last_step": c.last_step}
    val = val_swing(run, s0, halves=True)
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
        what = f"validation loss swings by {pct(m['val_swing'])}"
    elif m["swing"] >= TRAIN_SWING and m["excess"] >= TRAIN_EXCESS:
        what = f"swings of {pct(m['swing'])}"
    else:
        return []
    title = (f"Loss oscillating around {num(m['level'])} since step {step(m['window_start'])}: "
             f"{what} with no downward trend")
    rec = (f"{lr_advice(run, 0.3, 'Lower')}, or use an adaptive optimizer "
           f"(Adam at 1e-3 or 3e-4).")
    return [Finding(KIND, "warning", m["window_start"], m["last_step"], None, title, rec, m)]
