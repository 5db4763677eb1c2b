"""overfitting: validation loss rises while training loss falls; the gap keeps growing.

Tips: seeds/002 and seeds/003 (a growing gap between the training and validation curves
means overfitting). Needs `val/loss` and `loss`. Since the best validation step, the
validation loss must have risen (for the last three evaluations, not in one bump), by
more than its own evaluation-to-evaluation noise allows, while the training loss kept
falling and the gap between the two grew: the net memorises its training set.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve
from worker.diagnosis.findings import Finding, num, pct, step
from worker.diagnosis.rules._val import val_curve
from worker.diagnosis.series import RunData

KIND = "overfitting"
MIN_EVALS_AFTER = 3  # evaluations after the best one
MIN_RISE = 0.15  # validation loss >= 15% above its best, now and for the last 3 evaluations...
MIN_RISE_NOISE = 4.0  # ...and >= 4x its evaluation-to-evaluation noise (self-normalised)
MIN_GAP_GROWTH = 0.1  # the val-train gap grew by >= 10% of the best validation loss
MIN_TRAIN_FALL = 1.5  # and the training loss fell >= 1.5x since the best validation step


def measure(run: RunData) -> dict | None:
    """Rise of the validation loss since its best and what training did meanwhile."""
    v = val_curve(run)
    c = curve(run, "loss")
    if v is None or c is None or v.best <= 0:
        return None
    after = v.steps > v.best_step
    if after.sum() < MIN_EVALS_AFTER:
        return None
    lo = max(c.first_step, v.best_step - 0.05 * c.span)
    train_best = c.level(lo, v.best_step + 0.05 * c.span)
    train_now = c.level_last(0.05)
    if not np.isfinite(train_best):
        return None
    return {"best_val": v.best, "best_step": v.best_step, "val_now": v.now,
            "rise": (v.now - v.best) / v.best, "sustained": v.worse_recently,
            "noise": v.noise, "undone": v.undone,
            "train_at_best": train_best, "train_now": train_now,
            "gap_growth": ((v.now - train_now) - (v.best - train_best)) / v.best,
            "last_step": int(v.steps[-1])}


def rule(run: RunData) -> list[Finding]:
    """Fire when validation rises, training does not, and the gap widens."""
    m = measure(run)
    if m is None or not (m["rise"] >= MIN_RISE and m["sustained"] >= MIN_RISE
                         and m["sustained"] >= MIN_RISE_NOISE * m["noise"]
                         and m["train_now"] * MIN_TRAIN_FALL <= m["train_at_best"]
                         and m["gap_growth"] >= MIN_GAP_GROWTH):
        return []
    title = (f"Overfitting: validation loss up {pct(m['rise'])} since its best "
             f"{num(m['best_val'])} at step {step(m['best_step'])} while training loss fell "
             f"to {num(m['train_now'])}")
    rec = (f"Keep the checkpoint of step {step(m['best_step'])} (best validation loss); "
           f"then add data or augmentation, weight decay or dropout.")
    return [Finding(KIND, "warning", m["best_step"], m["last_step"], None, title, rec, m)]
