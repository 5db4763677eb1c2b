"""not_learning: the training loss stays at its starting level.

Tip: seeds/004 (if the net does not learn, first check that it can overfit a tiny set).
The smoothed training loss never got meaningfully below its start (nor rose far above it:
that is divergence) and shows no steady descent either (a slow, steady one is
lr_too_low's), nor a recent level below that of the first half of the run: a healthy net
on noisy labels starts slowly (5-8% below its start after 50-70 steps, as far as some
memorising ones get), but it is bending down, its last fifth 2-13% below its first half,
where a stuck or memorising net's stays within about 1.5%.
With `val/loss`, a validation loss that never improves on its first evaluation while
training goes on (the net memorises, learns nothing general: shuffled or wrong labels) is
the same finding, unless training fell 10x or more: a net that drove its training loss
that far down has memorised its set, and a validation loss that rose meanwhile is
overfitting's finding.
Judged once the net has seen enough examples: MIN_STEPS batches of REF_BATCH or more, and
proportionally more steps for smaller batches (`batch_size` in the config): a batch-2 run
has seen 16x fewer examples by the same step, and its loss still hovers near the start
where a batch-32 run would have moved. Without `batch_size`, NO_BATCH_MIN_STEPS.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve
from worker.diagnosis.findings import Finding, num, pct, step
from worker.diagnosis.rules._val import val_curve, val_swing
from worker.diagnosis.series import RunData

KIND = "not_learning"
MIN_BUCKETS = 15  # smoothed points needed
MIN_STEPS = 50  # and this many steps at a batch size of REF_BATCH or more...
REF_BATCH = 32  # ...or MIN_STEPS x REF_BATCH examples at smaller batches (e.g. 800 steps at 2)
NO_BATCH_MIN_STEPS = 100  # without `batch_size` in the config
MAX_PROGRESS = 0.1  # the smoothed loss never went >= 10% below its start
MAX_TREND = 5.0  # and its trend fell by < 5x the scatter of the smoothed loss around it
MAX_RECENT_FALL = 0.02  # and the median of its last fifth is < 2% below the first half's
MAX_RISE = 0.2  # nor is it now >= 20% above it
MIN_EVALS = 8  # validation evaluations needed for the validation test
MAX_VAL_PROGRESS = 0.03  # best validation loss within 3% of the first...
MAX_VAL_FALL = 0.01  # ...and its trend over the run falls by < 1% (no slow improvement)
MAX_TRAIN_FALL_VAL = 10.0  # ...while training stays within 10x of its start (no memorising)


def min_steps(run: RunData) -> float:
    """Steps needed before a verdict: fewer examples seen per step need more steps."""
    bs = run.batch_size
    if bs is None:
        return NO_BATCH_MIN_STEPS
    return MIN_STEPS * max(1.0, REF_BATCH / bs)


def measure(run: RunData) -> dict | None:
    """Best progress of the training loss and of the validation loss, or None."""
    c = curve(run, "loss")
    if c is None or len(c.b) < MIN_BUCKETS or c.span < min_steps(run):
        return None
    start = max(c.start, float(c.b.median[0]))
    if start <= 0:
        return None
    out = {"start": start, "best": float(c.b.median.min()), "now": c.level_last(0.1),
           "first_step": c.first_step, "last_step": c.last_step}
    out["progress"] = (start - out["best"]) / start
    slope = c.slope(c.first_step, c.last_step)
    resid = c.b.median - slope * c.b.step
    scatter = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    fall = -slope * c.span
    out["trend"] = fall / scatter if scatter > 0 else (np.inf if fall > 0 else 0.0)
    y = c.b.median
    early = float(np.median(y[: y.size // 2]))
    recent = float(np.median(y[-max(3, y.size // 5):]))
    out["recent_fall"] = (early - recent) / early if early > 0 else 0.0
    v = val_curve(run, MIN_EVALS)
    trend = val_swing(run, c.first_step)
    if v is not None and v.first > 0 and v.span >= min_steps(run) and trend is not None:
        out.update(val_first=v.first, val_best=v.best, val_progress=(v.first - v.best) / v.first,
                   val_trend=trend[1])
    return out


def rule(run: RunData) -> list[Finding]:
    """Fire when neither the training nor the validation loss ever left its start."""
    m = measure(run)
    if m is None or m["now"] > (1 + MAX_RISE) * m["start"]:
        return []
    span = step(m["last_step"] - m["first_step"])
    if (m["progress"] < MAX_PROGRESS and m["trend"] < MAX_TREND
            and m["recent_fall"] < MAX_RECENT_FALL):
        title = (f"Not learning: training loss still near its start {num(m['start'])} after "
                 f"{span} steps (best {num(m['best'])}, {pct(m['progress'])} lower)")
    elif (m.get("val_progress", 1.0) < MAX_VAL_PROGRESS and m["val_trend"] > -MAX_VAL_FALL
          and m["now"] * MAX_TRAIN_FALL_VAL > m["start"]):
        title = (f"Not learning anything general: validation loss never improved on "
                 f"{num(m['val_first'])} in {span} steps, while training loss fell to "
                 f"{num(m['now'])}")
    else:
        return []
    rec = ("Check that the model can overfit one small batch (loss near 0); if not, check "
           "labels, loss function, data pipeline and that the optimizer holds the model's "
           "parameters.")
    return [Finding(KIND, "warning", m["first_step"], m["last_step"], None, title, rec, m)]
