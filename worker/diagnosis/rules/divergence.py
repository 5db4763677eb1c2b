"""divergence: the loss rises far above its running minimum and keeps rising.

Tip: seeds/002 (too high a learning rate makes the loss shoot up).
The smoothed loss (bucket medians) must have undone at least half of the progress the run
had made (or doubled, for a run that never made progress), and stayed there for the whole
recent window: one bad batch or a transient bump is not divergence. The best level it is
measured from is a level too (the lowest running median of 3 buckets, so at least two
neighbouring buckets held it): with tiny batches one lucky bucket of easy samples dips far
below the curve, and everything after it would look like a rise. When buckets hold only a
few points (a short run so far, or sparse logging) the running median widens to span
BEST_POINTS batch losses and the recent window RECENT_POINTS, so a batch-size-1 run's
bucket medians (which swing 3x from bucket to bucket) cannot fake a best level.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve
from worker.diagnosis.findings import Finding, lr_advice, num, step
from worker.diagnosis.series import RunData

KIND = "divergence"
MIN_BUCKETS = 10  # smoothed points needed before judging
RECENT_FRAC = 0.05  # the recent window: the last 5% of the run so far...
RECENT_BUCKETS = 3  # ...and at least 3 buckets
BEST_POINTS = 30  # the best level spans >= 30 batch losses...
RECENT_POINTS = 15  # ...and the recent window >= 15
LOST_PROGRESS = 0.5  # rise >= this share of (start level - best level)
RISE_OVER_BEST = 1.0  # and rise >= this multiple of the best level (doubling)
CRITICAL_OVER_START = 2.0  # critical when the loss is now this many times its start level


def rule(run: RunData) -> list[Finding]:
    """Fire when the whole recent window sits far above the running minimum."""
    c = curve(run, "loss")
    if c is None or len(c.b) < MIN_BUCKETS:
        return []
    med = c.b.median
    per_bucket = max(1.0, float(np.median(c.b.count)))
    span = max(3, int(np.ceil(BEST_POINTS / per_bucket)))  # buckets making the best level
    k = max(RECENT_BUCKETS, int(np.ceil(RECENT_POINTS / per_bucket)),
            int(np.sum(c.b.step >= c.at_frac(1.0 - RECENT_FRAC))))
    if k >= len(med) - span + 1:
        return []
    before, recent = med[:-k], med[-k:]
    # running median over `span` buckets: a single low bucket is not a level
    level = np.median(np.lib.stride_tricks.sliding_window_view(before, span), axis=1)
    ibest = span // 2 + int(np.argmin(level))
    best = float(level[ibest - span // 2])
    start = max(c.start, float(med[0]))
    threshold = best + max(LOST_PROGRESS * (start - best), RISE_OVER_BEST * best)
    if start <= 0 or float(recent.min()) <= threshold:
        return []
    rising_since = int(c.b.step[ibest + 1 + int(np.argmax(med[ibest + 1:] > threshold))])
    now = float(np.median(recent))
    severity = "critical" if now >= CRITICAL_OVER_START * start else "warning"
    best_step = int(c.b.step[ibest])
    title = (f"Loss diverging: now {num(now)}, up from its best {num(best)} at step "
             f"{step(best_step)} (started at {num(start)})")
    rec = (f"{lr_advice(run, 0.2, 'Lower')} (3-10x lower) and restart from the "
           f"checkpoint of step {step(best_step)}.")
    evidence = {"best_loss": best, "best_step": best_step, "current_loss": now,
                "start_loss": start, "threshold": threshold, "rising_since_step": rising_since}
    return [Finding(KIND, severity, best_step, c.last_step, None, title, rec, evidence)]
