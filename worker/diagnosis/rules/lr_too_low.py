"""lr_too_low: the loss falls slowly and almost linearly, with very little noise.

Tip: seeds/002 (a curve that goes straight down without noise means a low learning rate).
A healthy curve drops fast and then bends; a low learning rate gives a straight, slow,
smooth descent. Measured on the smoothed loss: it falls (significantly, against its own
noise), the last third falls about as much as the first third (no bend), the whole run has
removed only a small part of the start level, and batch noise is small against the level.
Silent while a logged `lr` is still warming up or has been decayed (the schedule, not the
learning rate's size, shapes the curve then), and when `val/loss` does not improve along
with the training loss (memorising noise is slow and straight too, but is not_learning's).

With `update_ratio/<module>` (from `watch(model)`) the layers say it directly, and earlier:
when every layer moves but the typical update is well under the common 1e-3 of its weights
per step, a smooth loss that has removed little of its start and never rose above it is
enough after FAST_MIN_STEPS (in their first 100-300 steps healthy runs on hard data and
runs on shuffled labels look as slow and straight, but their updates are of the common size).
When a layer does not move at all (dead units, parameters the optimizer does not hold), a
larger learning rate is not the cure: silent (dead_relu's and not_learning's findings).
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve, lr_spread
from worker.diagnosis.findings import Finding, lr_advice, num, pct, step
from worker.diagnosis.rules._layers import early_medians
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
# With update ratios (update/weight per step, logged every few steps by watch(model)):
UPDATES_EARLY = 0.3  # read each module's ratios over the first 30% of their points so far
UPDATES_MIN_POINTS = 5  # per module (after the first update, optimizer state warming up)
LOW_UPDATES = 5e-4  # median module ratio < 5e-4, half the common 1e-3 (low-lr runs here:
#                     6e-5 to 3e-4; healthy runs >= 2.5e-3 in their first 10%)
FAST_MIN_STEPS = 50  # then this many steps suffice...
MAX_PEAK = 0.1  # ...if the smoothed loss never rose > 10% above its start (a loss thrown up
#                 by big steps that then killed the net also updates little afterwards)


def _updates(run: RunData) -> dict | None:
    """Median early update ratio per module (None without enough of them)."""
    early = early_medians(run, "update_ratio/", UPDATES_EARLY, UPDATES_MIN_POINTS)
    return {module: m for module, (m, _, _) in early.items()} or None


def measure(run: RunData) -> dict | None:
    """Progress, straightness and noise of the whole run (and the layers' update ratios),
    or None without data."""
    c = curve(run, "loss")
    if c is None or len(c.b) < MIN_BUCKETS:
        return None
    ratios = _updates(run)
    typical = float(np.median(list(ratios.values()))) if ratios else None
    stalled = sorted(k for k, v in ratios.items() if v <= 0) if ratios else []
    fast = typical is not None and not stalled and typical < LOW_UPDATES
    if c.span < (FAST_MIN_STEPS if fast else MIN_STEPS):
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
            "peak": float(c.b.median.max()) / start - 1.0 if start > 0 else float("inf"),
            "update_ratio": typical, "stalled": stalled, "fast": fast,
            "first_step": c.first_step, "last_step": c.last_step}


def _val_follows(run: RunData, first_step: int, progress: float) -> bool:
    val = val_swing(run, first_step)
    if val is None:
        return True
    swing, trend = val
    return -trend >= MIN_VAL_SHARE * progress and -trend >= MIN_VAL_STEADY * swing


def _fires(run: RunData, m: dict) -> bool:
    if m["stalled"] or m["progress"] > MAX_PROGRESS or m["noise"] > MAX_NOISE:
        return False
    if m["fast"]:
        return m["peak"] <= MAX_PEAK
    return (m["progress"] >= MIN_PROGRESS and m["straightness"] >= MIN_STRAIGHTNESS
            and m["significance"] >= MIN_SIGNIFICANCE
            and _val_follows(run, m["first_step"], m["progress"]))


def rule(run: RunData) -> list[Finding]:
    """Fire on a slow, straight, smooth descent (earlier when the layers update little)."""
    m = measure(run)
    if m is None or not _fires(run, m):
        return []
    span = step(m["last_step"] - m["first_step"])
    if m["fast"]:
        title = (f"Updates far too small: {num(m['update_ratio'])} of the weights per step "
                 f"(about 1e-3 is usual), loss {num(m['start'])} to {num(m['now'])} "
                 f"({pct(m['progress'])}) over {span} steps")
    else:
        title = (f"Loss falling slowly and in a straight line: {num(m['start'])} to "
                 f"{num(m['now'])} ({pct(m['progress'])}) over {span} steps")
    rec = f"{lr_advice(run, 10.0, 'Raise')} (try 3-10x higher, watching for instability)."
    return [Finding(KIND, "warning", m["first_step"], m["last_step"], None, title, rec, m)]
