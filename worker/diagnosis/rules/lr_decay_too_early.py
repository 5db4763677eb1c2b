"""lr_decay_too_early: the learning rate was cut early and the loss stalled, or it hit ~0.

Tips: seeds/001 (do not trust default decay schedules; a schedule can silently drive the
learning rate to zero), seeds/004 (decaying too early stalled the loss). Needs `lr`.
Two cases: (a) the logged lr fell 10x below its peak in the first half of the run while
the loss was still falling fast, and the loss's slope collapsed right after; (b) the lr
is ~0 (1/1000 of its peak) for a good part of the run, or well before its planned end.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve
from worker.diagnosis.findings import Finding, num, pct, step
from worker.diagnosis.series import RunData

KIND = "lr_decay_too_early"
MIN_LR_POINTS = 5  # logged lr points needed
DECAYED = 0.1  # "decayed": the lr is 10x below its running peak
NEAR_ZERO = 1e-3  # "near zero": 1000x below its peak
EARLY_FRAC = 0.5  # (a) the decay happened in the first half of the run so far / planned
HEADING = 0.2  # (a) before the decay, the loss trend would have removed >= 20% of its level
#                   over the time since the decay...
STALL = 0.25  # (a) ...and after it the loss falls at <= 25% of that pace
MIN_WINDOW_BUCKETS = 3  # (a) loss buckets on each side of the decay
ZERO_FRAC = 0.1  # (b) near zero for >= 10% of the run so far...
PLANNED_FRAC = 0.9  # (b) ...or reached before 90% of the planned steps


def _decay_step(steps: np.ndarray, lr: np.ndarray, frac: float) -> int | None:
    """First step where lr <= frac * (its running peak), or None."""
    hit = lr <= frac * np.maximum.accumulate(lr)
    return int(steps[np.argmax(hit)]) if hit.any() else None


def measure(run: RunData) -> dict | None:
    """Where the lr decayed and how the loss moved around it, or None."""
    s = run.get("lr")
    if s is None:
        return None
    steps, lr = s.finite_points()
    if lr.size < MIN_LR_POINTS or float(lr.max()) <= 0:
        return None
    peak = float(lr.max())
    out = {"peak_lr": peak, "lr_now": float(lr[-1]), "first_step": int(steps[0]),
           "last_step": int(steps[-1]), "total_steps": run.total_steps,
           "decay_step": _decay_step(steps, lr, DECAYED),
           "zero_step": _decay_step(steps, lr, NEAR_ZERO)}
    c = curve(run, "loss")
    d = out["decay_step"]
    if c is None or d is None:
        return out
    pre = (c.b.step <= d) & (c.b.step >= d - (c.last_step - d))
    post = c.b.step > d
    if pre.sum() >= MIN_WINDOW_BUCKETS and post.sum() >= MIN_WINDOW_BUCKETS:
        level = c.level(c.b.step[pre][-1], d)
        pre_slope = c.slope(float(c.b.step[pre][0]), d)
        post_slope = c.slope(d + 1, c.last_step)
        out.update(loss_at_decay=level, loss_now=c.level_last(0.05),
                   heading=-pre_slope * (c.last_step - d) / level if level > 0 else 0.0,
                   stall=post_slope / pre_slope if pre_slope < 0 else 1.0)
    return out


def _early(m: dict, at: int) -> bool:
    total = m["total_steps"]
    if total:
        return at - m["first_step"] <= EARLY_FRAC * total
    return at - m["first_step"] <= EARLY_FRAC * (m["last_step"] - m["first_step"])


def rule(run: RunData) -> list[Finding]:
    """Fire on an early decay that stalled the loss, or an lr driven to ~0 early."""
    m = measure(run)
    if m is None:
        return []
    span = max(1, m["last_step"] - m["first_step"])
    z, d, total = m["zero_step"], m["decay_step"], m["total_steps"]
    if z is not None and ((m["last_step"] - z) >= ZERO_FRAC * span
                          or (total and z - m["first_step"] < PLANNED_FRAC * total)):
        title = (f"Learning rate decayed to ~0 ({num(m['lr_now'])}, peak {num(m['peak_lr'])}) "
                 f"at step {step(z)}" + (f", {pct(z / total)} into the run" if total else ""))
        at = z
    elif (d is not None and "heading" in m and _early(m, d) and m["heading"] >= HEADING
          and m["stall"] <= STALL):
        title = (f"Learning rate cut 10x at step {step(d)} while the loss was still falling "
                 f"fast; it has stalled near {num(m['loss_now'])} since")
        at = d
    else:
        return []
    rec = (f"Decay later: keep the learning rate near {num(m['peak_lr'])} until the loss stops "
           f"falling, or use a constant learning rate and tune it; check that the schedule "
           f"counts epochs or steps as intended.")
    return [Finding(KIND, "warning", at, m["last_step"], None, title, rec, m)]
