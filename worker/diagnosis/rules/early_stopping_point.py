"""early_stopping_point: the best validation step is far behind the current step.

Tip: seeds/003 (early stopping). Needs `val/loss`. Says which checkpoint to keep. Fires
when the best evaluation lies a few evaluations behind and the validation loss has stayed
well above it since (the last three evaluations, by more than its own evaluation noise
allows, not one bump); this also covers runs that diverged (where training got worse
too, so it is not overfitting). A steady rise (nearly every evaluation since the best
above all before it, over at least 5 evaluations) needs less (12% instead of 20%: healthy
runs on small validation sets bump 15-17% above their best and come back).
The best may be the first evaluation: a net that memorises a tiny training set can reach
its best validation loss before the first evaluation after step 0 and only lose it after.
"""

from __future__ import annotations

from worker.diagnosis.findings import Finding, num, pct, step
from worker.diagnosis.rules._val import val_curve
from worker.diagnosis.series import RunData

KIND = "early_stopping_point"
# the rise itself: Val.rose (thresholds in rules/_val.py, shared with overfitting)
WARN_WORSE = 0.2  # warning (not info) when >= 20% above the best


def rule(run: RunData) -> list[Finding]:
    """Fire when the best checkpoint is far behind and clearly better than now."""
    v = val_curve(run)
    if v is None or v.best <= 0:
        return []
    if not v.rose():
        return []
    behind = int(v.steps[-1]) - v.best_step
    worse, after = v.rise, v.evals_after
    severity = "warning" if worse >= WARN_WORSE else "info"
    title = (f"Best validation loss {num(v.best)} was at step {step(v.best_step)}, "
             f"{step(behind)} steps ago; it is {pct(worse)} worse now")
    rec = (f"Keep the checkpoint of step {step(v.best_step)}; stop training here or use early "
           f"stopping on the validation loss.")
    evidence = {"best_val": v.best, "best_step": v.best_step, "val_now": v.now,
                "steps_behind": behind, "worse": worse, "undone": v.undone, "noise": v.noise,
                "evals_after": after, "rising": v.rising}
    return [Finding(KIND, severity, v.best_step, int(v.steps[-1]), None, title, rec, evidence)]
