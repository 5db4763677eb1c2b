"""early_plateau: a fast early drop, then flat far above where training could go.

Tip: seeds/002 (a medium-high learning rate drops fast, then sticks in a poor minimum).
The smoothed loss must have made most of its progress in the first quarter of the run,
then stayed flat for at least half the run, at a level that is still a good share of its
start level, while the learning rate stayed where it was (a decay is lr_decay_too_early's
business), and the plateau is restless, the mark of a step size too large to settle: the
validation loss (a fixed set: no batch sampling noise) wanders around its trend, or,
without `val/loss`, the smoothed training loss wanders more than batch noise explains.
"Flat" is relative to the drop: after the knee the loss falls at a tiny fraction of the
mean rate of the drop before it (a healthy run bending towards its floor still falls at
1-9% of its early rate; a stuck one at a few tenths of a % or not at all), and, whatever
the early rate (a drop faster than one bucket is not resolved), it has not fallen by half
its level again since. The start level of a cross-entropy
classifier logged from step 0 is ln(n_classes), the loss of a sane init: a fast run's first
logged points may already lie far below it, and a drop from a broken init down to it is no
learning (that is loss_at_init's business).
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import Curve, curve, lr_spread
from worker.diagnosis.findings import Finding, lr_advice, num, step
from worker.diagnosis.rules._val import val_swing
from worker.diagnosis.rules.loss_at_init import MAX_START_STEP, expected_init_loss
from worker.diagnosis.series import RunData

KIND = "early_plateau"
MIN_BUCKETS = 20  # smoothed points needed
REACH = 0.2  # "reached the plateau": within 20% of the total drop above the current level
MAX_REACH_FRAC = 0.25  # ...within the first quarter of the run
MIN_FLAT_FRAC = 0.5  # flat for at least half of the run
MAX_SLOPE_RATIO = 0.005  # flat: falling at < 0.5% of the drop's mean rate (per step)...
MAX_FLAT_DROP = 0.5  # ...and less than 50% further drop over the flat part
MIN_LEVEL_OF_START = 0.15  # plateau >= 15% of the start level
MIN_PROGRESS = 0.3  # the early drop removed >= 30% of the start level
VAL_SWING = 0.1  # validation swings >= 10% of its level over the plateau...
MIN_EXCESS = 2.0  # ...or, without validation, training swings >= 2x what batch noise gives
LR_STEADY = 2.0  # logged lr varies less than this factor over the plateau


def _init_level(run: RunData, c: Curve) -> float:
    """ln(n_classes) for a cross-entropy classifier logged from its first step, else the
    measured start level (a run logged from later on, e.g. resumed, shows no init)."""
    expected = expected_init_loss(run)
    if expected is not None and c.first_step <= MAX_START_STEP:
        return expected
    return max(c.start, float(c.b.median[0]))


def measure(run: RunData) -> dict | None:
    """Reach time, flatness, level and restlessness of the plateau, or None."""
    c = curve(run, "loss")
    if c is None or len(c.b) < MIN_BUCKETS:
        return None
    start = _init_level(run, c)
    now = c.level_last(0.2)
    drop = start - now
    if start <= 0 or drop <= 0:
        return None
    reached = c.b.median <= now + REACH * drop
    i = int(np.argmax(reached))
    t_reach = int(c.b.step[i])
    slope = c.slope(t_reach, c.last_step)
    early_rate = (1.0 - REACH) * drop / max(1, t_reach - c.first_step)  # mean, per step
    _, excess = c.swing(t_reach, c.last_step)
    lr_ratio = lr_spread(run, t_reach, c.last_step)
    val = val_swing(run, t_reach)
    return {"val_swing": val[0] if val else None, "start": start, "plateau": now,
            "progress": drop / start,
            "reach_frac": (t_reach - c.first_step) / c.span,
            "flat_frac": (c.last_step - t_reach) / c.span,
            "flat_drop": -slope * (c.last_step - t_reach) / now if now > 0 else 0.0,
            "slope_ratio": -slope / early_rate,
            "excess": excess,
            "lr_ratio": lr_ratio, "plateau_step": t_reach, "last_step": c.last_step}


def rule(run: RunData) -> list[Finding]:
    """Fire on a fast drop followed by a long, restless plateau at a high level."""
    m = measure(run)
    if m is None or not (m["reach_frac"] <= MAX_REACH_FRAC and m["flat_frac"] >= MIN_FLAT_FRAC
                         and m["slope_ratio"] < MAX_SLOPE_RATIO
                         and m["flat_drop"] < MAX_FLAT_DROP
                         and m["plateau"] >= MIN_LEVEL_OF_START * m["start"]
                         and m["progress"] >= MIN_PROGRESS and m["lr_ratio"] < LR_STEADY):
        return []
    if (m["val_swing"] < VAL_SWING) if m["val_swing"] is not None else (m["excess"] < MIN_EXCESS):
        return []
    how = (f"falling {num(1.0 / m['slope_ratio'])}x slower than during the drop"
           if m["slope_ratio"] > 0 else "no longer falling")
    title = (f"Loss dropped fast from {num(m['start'])} then stuck near {num(m['plateau'])} "
             f"since step {step(m['plateau_step'])}, {how}")
    rec = (f"{lr_advice(run, 0.3, 'Lower')}, or decay it once the loss stops falling "
           f"(not before).")
    return [Finding(KIND, "warning", m["plateau_step"], m["last_step"], None, title, rec, m)]
