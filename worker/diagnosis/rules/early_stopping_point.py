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
MIN_EVALS_AFTER = 3  # the best evaluation lies >= 3 evaluations behind
MIN_WORSE = 0.2  # validation loss >= 20% above the best over the last 3 evaluations...
MIN_WORSE_NOISE = 4.0  # ...and >= 4x its evaluation noise since the best (self-normalised)
STEADY_EVALS = 5  # or, over >= 5 evaluations after the best,
STEADY_TAU = 0.8  # a steady rise (Kendall's tau of the evaluations from the best on >= 0.8)
STEADY_WORSE = 0.12  # of >= 12% (now and for the last 3 evaluations; noise test as above)
WARN_WORSE = 0.2  # warning (not info) when >= 20% above the best


def rule(run: RunData) -> list[Finding]:
    """Fire when the best checkpoint is far behind and clearly better than now."""
    v = val_curve(run)
    if v is None or v.best <= 0:
        return []
    behind = int(v.steps[-1]) - v.best_step
    worse = (v.now - v.best) / v.best
    after = len(v.steps) - 1 - v.best_i
    floor = MIN_WORSE
    if after >= STEADY_EVALS and v.rising >= STEADY_TAU:
        floor = STEADY_WORSE
    if not (after >= MIN_EVALS_AFTER
            and worse >= floor and v.worse_recently >= floor
            and v.worse_recently >= MIN_WORSE_NOISE * v.noise):
        return []
    severity = "warning" if worse >= WARN_WORSE else "info"
    title = (f"Best validation loss {num(v.best)} was at step {step(v.best_step)}, "
             f"{step(behind)} steps ago; it is {pct(worse)} worse now")
    rec = (f"Keep the checkpoint of step {step(v.best_step)}; stop training here or use early "
           f"stopping on the validation loss.")
    evidence = {"best_val": v.best, "best_step": v.best_step, "val_now": v.now,
                "steps_behind": behind, "worse": worse, "undone": v.undone, "noise": v.noise,
                "evals_after": after, "rising": v.rising}
    return [Finding(KIND, severity, v.best_step, int(v.steps[-1]), None, title, rec, evidence)]
