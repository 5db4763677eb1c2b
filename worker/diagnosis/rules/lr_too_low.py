"""lr_too_low: the loss falls slowly and almost linearly, with very little noise.

Tip: seeds/002 (a curve that goes straight down without noise means a low learning rate).
A healthy curve drops fast and then bends; a low learning rate gives a straight, slow,
smooth descent. Measured on the smoothed loss: it falls (significantly, against its own
noise), the last third falls about as much as the first third (no bend), the whole run has
removed only a small part of the start level, and batch noise is small against the level.
Silent while a logged `lr` is still warming up or has been decayed (the schedule, not the
learning rate's size, shapes the curve then), and when `val/loss` does not improve along
with the training loss (memorising noise is slow and straight too, but is not_learning's).
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve, lr_spread
from worker.diagnosis.findings import Finding, lr_advice, num, pct, step
from worker.diagnosis.rules._val import val_swing
from worker.diagnosis.series import RunData

KIND = "lr_too_low"
MIN_BUCKETS = 15  # smoothed points needed
MIN_STEPS = 300  # and this many steps (before, any curve can look straight)
MAX_PROGRESS = 0.5  # total drop over the run <= 50% of the start level (slow)...
MIN_PROGRESS = 0.01  # ...but >= 1% of it (else it is not falling: not_learning's)
MIN_STRAIGHTNESS = 0.5  # drop in the last third >= 50% of the drop in the first third
MAX_NOISE = 0.05  # point-to-point noise <= 5% of the level (smooth)
MIN_SIGNIFICANCE = 5.0  # drop >= 5x the noise of a third's level estimate
LR_STEADY = 2.0  # logged lr varies less than this factor over the run
MIN_VAL_SHARE = 0.3  # with val/loss: its trend fell by >= 30% of the training loss's progress
MIN_VAL_STEADY = 10.0  # ...and by >= 10x its scatter around that trend (a steady fall)


def measure(run: RunData) -> dict | None:
    """Progress, straightness and noise of the whole run, or None without data."""
    c = curve(run, "loss")
    if c is None or len(c.b) < MIN_BUCKETS or c.span < MIN_STEPS:
        return None
    if lr_spread(run, c.first_step, c.last_step) > LR_STEADY:
        return None
    t1, t2 = c.at_frac(1 / 3), c.at_frac(2 / 3)
    a = c.level(c.first_step, t1)
    b = c.level(t1, t2)
    d = c.level(t2, c.last_step)
    first, last = a - b, b - d
    start, now = max(c.start, float(c.b.median[0])), c.level_last(0.1)
    noise = c.noise(c.first_step, c.last_step)
    per_third = max(1.0, float(np.sum(c.b.count)) / 3.0)
    return {"start": start, "now": now, "progress": (start - now) / start if start > 0 else 0.0,
            "straightness": last / first if first > 0 else 0.0,
            "noise": noise / now if now > 0 else float("inf"),
            "significance": (a - d) / (noise / np.sqrt(per_third)) if noise > 0 else float("inf"),
            "first_step": c.first_step, "last_step": c.last_step}


def _val_follows(run: RunData, first_step: int, progress: float) -> bool:
    val = val_swing(run, first_step)
    if val is None:
        return True
    swing, trend = val
    return -trend >= MIN_VAL_SHARE * progress and -trend >= MIN_VAL_STEADY * swing


def rule(run: RunData) -> list[Finding]:
    """Fire on a slow, straight, smooth descent."""
    m = measure(run)
    if m is None or not (MIN_PROGRESS <= m["progress"] <= MAX_PROGRESS
                         and m["straightness"] >= MIN_STRAIGHTNESS
                         and m["noise"] <= MAX_NOISE and m["significance"] >= MIN_SIGNIFICANCE
                         and _val_follows(run, m["first_step"], m["progress"])):
        return []
    title = (f"Loss falling slowly and in a straight line: {num(m['start'])} to {num(m['now'])} "
             f"({pct(m['progress'])}) over {step(m['last_step'] - m['first_step'])} steps")
    rec = f"{lr_advice(run, 10.0, 'Raise')} (try 3-10x higher, watching for instability)."
    return [Finding(KIND, "warning", m["first_step"], m["last_step"], None, title, rec, m)]
