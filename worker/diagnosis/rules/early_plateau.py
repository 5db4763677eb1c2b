"""early_plateau: a fast early drop, then flat far above where training could go.

Tip: seeds/002 (a medium-high learning rate drops fast, then sticks in a poor minimum).
The smoothed loss must have made most of its progress in the first quarter of the run,
then stayed flat for at least half the run, at a level that is still a good share of its
start level, while the learning rate stayed where it was (a decay is lr_decay_too_early's
business), and the plateau is restless, the mark of a step size too large to settle: the
validation loss (a fixed set: no batch sampling noise) wanders around its trend, or,
without `val/loss`, the smoothed training loss wanders more than batch noise explains.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve, lr_spread
from worker.diagnosis.findings import Finding, lr_advice, num, step
from worker.diagnosis.rules._val import val_swing
from worker.diagnosis.series import RunData

KIND = "early_plateau"
MIN_BUCKETS = 20  # smoothed points needed
REACH = 0.2  # "reached the plateau": within 20% of the total drop above the current level
MAX_REACH_FRAC = 0.25  # ...within the first quarter of the run
MIN_FLAT_FRAC = 0.5  # flat for at least half of the run
MAX_FLAT_DROP = 0.1  # less than 10% further drop over the flat part
MIN_LEVEL_OF_START = 0.15  # plateau >= 15% of the start level
MIN_PROGRESS = 0.3  # the early drop removed >= 30% of the start level
VAL_SWING = 0.1  # validation swings >= 10% of its level over the plateau...
MIN_EXCESS = 2.0  # ...or, without validation, training swings >= 2x what batch noise gives
LR_STEADY = 2.0  # logged lr varies less than this factor over the plateau


def measure(run: RunData) -> dict | None:
    """Reach time, flatness, level and restlessness of the plateau, or None."""
    c = curve(run, "loss")
    if c is None or len(c.b) < MIN_BUCKETS:
        return None
    start = max(c.start, float(c.b.median[0]))
    now = c.level_last(0.2)
    drop = start - now
    if start <= 0 or drop <= 0:
        return None
    reached = c.b.median <= now + REACH * drop
    i = int(np.argmax(reached))
    t_reach = int(c.b.step[i])
    slope = c.slope(t_reach, c.last_step)
    _, excess = c.swing(t_reach, c.last_step)
    lr_ratio = lr_spread(run, t_reach, c.last_step)
    val = val_swing(run, t_reach)
    return {"val_swing": val[0] if val else None, "start": start, "plateau": now,
            "progress": drop / start,
            "reach_frac": (t_reach - c.first_step) / c.span,
            "flat_frac": (c.last_step - t_reach) / c.span,
            "flat_drop": -slope * (c.last_step - t_reach) / now if now > 0 else 0.0,
            "excess": excess,
            "lr_ratio": lr_ratio, "plateau_step": t_reach, "last_step": c.last_step}


def rule(run: RunData) -> list[Finding]:
    """Fire on a fast drop followed by a long, restless plateau at a high level."""
    m = measure(run)
    if m is None or not (m["reach_frac"] <= MAX_REACH_FRAC and m["flat_frac"] >= MIN_FLAT_FRAC
                         and m["flat_drop"] < MAX_FLAT_DROP
                         and m["plateau"] >= MIN_LEVEL_OF_START * m["start"]
                         and m["progress"] >= MIN_PROGRESS and m["lr_ratio"] < LR_STEADY):
        return []
    if (m["val_swing"] < VAL_SWING) if m["val_swing"] is not None else (m["excess"] < MIN_EXCESS):
        return []
    title = (f"Loss dropped fast from {num(m['start'])} then stuck near {num(m['plateau'])} "
             f"since step {step(m['plateau_step'])}")
    rec = (f"{lr_advice(run, 0.3, 'Lower')}, or decay it once the loss stops falling "
           f"(not before).")
    return [Finding(KIND, "warning", m["plateau_step"], m["last_step"], None, title, rec, m)]
