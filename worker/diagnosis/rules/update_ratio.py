"""update_ratio: the size of updates relative to weights is far from about 1e-3.

Common practice (update/weight ratio of about 1e-3 per step). Needs
`update_ratio/<module>`. Read over the first part of training, and with `loss` only while
the loss is still above a fifth of its start: near convergence updates shrink by design,
so a small ratio then says nothing about the learning rate.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve
from worker.diagnosis.findings import Finding, lr_advice, num, step
from worker.diagnosis.rules._layers import early_medians, names
from worker.diagnosis.series import RunData

KIND = "update_ratio"
EARLY_FRAC = 0.3  # judge the first 30% of the points so far
MIN_POINTS = 5  # per module
SKIP_FIRST = 1  # the very first update (optimizer state warming up) is ignored
HIGH = 0.2  # median ratio above this: updates rewrite 20% of the weights per step (healthy
#            runs reach 0.06 in their first steps)
LOW = 1e-5  # median ratio below this: the weights barely move
TARGET = 1e-3
CONVERGED = 0.2  # with `loss`: ignore steps after the smoothed loss fell below 20% of start


def _converged_at(run: RunData) -> float:
    """The step where the smoothed loss first fell below CONVERGED x its start (or +inf)."""
    c = curve(run, "loss")
    if c is None:
        return float("inf")
    below = c.b.median < CONVERGED * c.start
    return float(c.b.step[np.argmax(below)]) if below.any() else float("inf")


def measure(run: RunData) -> dict | None:
    """Median early update ratio per module, or None."""
    early = early_medians(run, "update_ratio/", EARLY_FRAC, MIN_POINTS, SKIP_FIRST,
                          _converged_at(run))
    if not early:
        return None
    med = {module: m for module, (m, _, _) in early.items()}
    first = min(f for _, f, _ in early.values())
    last = max(la for _, _, la in early.values())
    return {"ratios": med, "first_step": first, "last_step": last,
            "high": sorted(k for k, v in med.items() if v > HIGH),
            "low": sorted(k for k, v in med.items() if v < LOW)}


def rule(run: RunData) -> list[Finding]:
    """One finding when layers update far too much or far too little."""
    m = measure(run)
    if m is None or not (m["high"] or m["low"]):
        return []
    r = m["ratios"]
    side = "high" if len(m["high"]) >= len(m["low"]) else "low"
    mods = m[side]
    typical = float(np.median([r[k] for k in mods]))
    factor = TARGET / typical if typical > 0 else 1e3
    title = (f"Update/weight ratio {num(typical)} per step in {names(mods)} (steps "
             f"{step(m['first_step'])}-{step(m['last_step'])}), far from about 1e-3")
    verb = "Lower" if side == "high" else "Raise"
    rec = (f"{lr_advice(run, min(max(factor, 1e-3), 1e3), verb)} so updates are about 1e-3 "
           f"of the weights" + (", or give those layers their own learning rate" if
                                len(mods) < len(r) else "") + ".")
    return [Finding(KIND, "warning", m["first_step"], m["last_step"], None, title, rec, m)]
