"""val_plateau: the validation loss stopped improving for a while.

Tip: seeds/002 (when validation loss stops falling, halve the learning rate, again, until
it falls). Needs `val/loss`. A validation loss that never improved is not_learning's; one
that rises is overfitting's. "A while" is measured against the run's own pace: no new best
(beyond evaluation noise) for at least half of the run and for three times as long as it
took to reach that best. A run that improves until late and then levels off has simply
converged; one whose logged `lr` is being decayed over the flat stretch already follows
the tip.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import lr_spread
from worker.diagnosis.findings import Finding, current_lr, num, step
from worker.diagnosis.rules._val import val_curve
from worker.diagnosis.series import RunData

KIND = "val_plateau"
MIN_IMPROVEMENT = 0.1  # it had improved by >= 10% on its first evaluation
NEW_BEST = 0.01  # an improvement is a new best by >= 1%...
NEW_BEST_NOISE = 2.0  # ...and >= 2x the evaluation-to-evaluation noise (recent half)...
MAX_NEW_BEST = 0.05  # ...capped at 5%
MIN_FLAT_FRAC = 0.5  # no improvement over the last half of the run...
MIN_FLAT_EVALS = 5  # ...and over >= 5 evaluations
MAX_RISE = 0.1  # and the loss now within 10% of the best (not rising)
PATIENCE = 3.0  # flat for >= 3x the steps it took to reach the last new best
LR_STEADY = 2.0  # logged lr varies less than this factor over the flat stretch


def measure(run: RunData) -> dict | None:
    """How long the validation loss has gone without a new best, or None."""
    v = val_curve(run)
    if v is None or v.best <= 0 or v.first <= 0:
        return None
    running = np.minimum.accumulate(v.smooth)
    d = np.diff(v.raw[len(v.raw) // 2:])
    noise = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0) / v.best
    margin = min(MAX_NEW_BEST, max(NEW_BEST, NEW_BEST_NOISE * noise))
    improved = np.flatnonzero(v.smooth[1:] < (1 - margin) * running[:-1]) + 1
    last = int(improved[-1]) if improved.size else 0
    since = int(v.steps[last])
    flat = int(v.steps[-1]) - since
    return {"new_best_margin": margin, "best_val": v.best, "best_step": v.best_step,
            "val_now": v.now,
            "improvement": (v.first - v.best) / v.first,
            "rise": (v.now - v.best) / v.best,
            "flat_frac": flat / v.span, "patience": flat / max(1, since - int(v.steps[0])),
            "flat_evals": len(v.steps) - 1 - last,
            "lr_ratio": lr_spread(run, since, int(v.steps[-1])),
            "last_improvement_step": since, "flat_steps": flat, "last_step": int(v.steps[-1])}


def rule(run: RunData) -> list[Finding]:
    """Fire when the validation loss has been flat near its best for long."""
    m = measure(run)
    if m is None or not (m["improvement"] >= MIN_IMPROVEMENT and m["flat_frac"] >= MIN_FLAT_FRAC
                         and m["flat_evals"] >= MIN_FLAT_EVALS and m["rise"] <= MAX_RISE
                         and m["patience"] >= PATIENCE and m["lr_ratio"] < LR_STEADY):
        return []
    title = (f"Validation loss flat near {num(m['best_val'])} for {step(m['flat_steps'])} steps "
             f"(no new best since step {step(m['last_improvement_step'])})")
    lr = current_lr(run)
    now = f" (from {num(lr)} to {num(lr / 2)})" if lr else ""
    rec = (f"Halve the learning rate{now}, and again each time the validation loss stops "
           f"falling; if it stays flat, stop early (best at step {step(m['best_step'])}).")
    return [Finding(KIND, "info", m["last_improvement_step"], m["last_step"], None, title, rec,
                    m)]
