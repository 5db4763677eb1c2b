"""overfitting: validation loss rises while training loss falls; the gap keeps growing.

Tips: seeds/002 and seeds/003 (a growing gap between the training and validation curves
means overfitting). Needs `val/loss` and `loss`. Since the best validation step, the
validation loss must have risen (for the last three evaluations, not in one bump), by
more than its own evaluation-to-evaluation noise allows, while the training loss kept
falling and the gap between the two grew: the net memorises its training set.
A steady rise (nearly every evaluation since the best above all before it, over at least
5 evaluations) is evidence in itself, so it needs a smaller rise (12%, above the 10% where
the labels' gray zone starts) than a bumpy one (20%: healthy runs on small validation sets
bump 15-17% above their best and come back).
Training must have fallen by a quarter (1.25x) since the best validation step: on the
small tabular sets a net that overfits is already near zero training loss there, and
falls a further 1.3-1.5x only (nets that blew up and came back, whose validation also
rose, fell <= 1.02x).
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve
from worker.diagnosis.findings import Finding, num, pct, step
from worker.diagnosis.rules._val import RISE_EVALS_AFTER, val_curve
from worker.diagnosis.series import RunData

KIND = "overfitting"
# the rise itself: Val.rose (thresholds in rules/_val.py, shared with early_stopping_point)
MIN_GAP_GROWTH = 0.1  # the val-train gap grew by >= 10% of the best validation loss
MIN_TRAIN_FALL = 1.25  # and the training loss fell >= 1.25x since the best validation step
#                       (and is >= 1.25x below its start level)


def measure(run: RunData) -> dict | None:
    """Rise of the validation loss since its best and what training did meanwhile."""
    v = val_curve(run)
    c = curve(run, "loss")
    if v is None or c is None or v.best <= 0:
        return None
    if v.evals_after < RISE_EVALS_AFTER:
        return None
    lo = max(c.first_step, v.best_step - 0.05 * c.span)
    train_best = c.level(lo, v.best_step + 0.05 * c.span)
    train_now = c.level_last(0.05)
    if not np.isfinite(train_best):
        return None
    return {"best_val": v.best, "best_step": v.best_step, "val_now": v.now,
            "rise": v.rise, "sustained": v.worse_recently,
            "noise": v.noise, "undone": v.undone, "evals_after": v.evals_after,
            "rising": v.rising, "rose": v.rose(),
            "train_at_best": train_best, "train_now": train_now, "train_start": c.start,
            "gap_growth": ((v.now - train_now) - (v.best - train_best)) / v.best,
            "last_step": int(v.steps[-1])}


def rule(run: RunData) -> list[Finding]:
    """Fire when validation rises, training does not, and the gap widens."""
    m = measure(run)
    if m is None or not (m.pop("rose")  # always true when it fires: not evidence
                         and m["train_now"] * MIN_TRAIN_FALL <= m["train_at_best"]
                         # below its start too: a net that blew up around the best step
                         # and came back to chance has memorised nothing
                         and m["train_now"] * MIN_TRAIN_FALL <= m["train_start"]
                         and m["gap_growth"] >= MIN_GAP_GROWTH):
        return []
    title = (f"Overfitting: validation loss up {pct(m['rise'])} since its best "
             f"{num(m['best_val'])} at step {step(m['best_step'])} while training loss fell "
             f"to {num(m['train_now'])}")
    rec = (f"Keep the checkpoint of step {step(m['best_step'])} (best validation loss); "
           f"then add data or augmentation, weight decay or dropout.")
    return [Finding(KIND, "warning", m["best_step"], m["last_step"], None, title, rec, m)]
