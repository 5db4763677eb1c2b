"""batch_variance: the band of batch-to-batch loss is wide for its level.

Tip: seeds/002 (when the upper and lower bounds of the oscillation widen, batch variance is
high: raise the batch size).
Read in buckets of consecutive batch losses: with small batches most batches hold only
easy examples and a few hold the hard ones, so the band stretches far above its median
(bucket mean well above bucket median) and far below it (lower quartile well under the
median). Judged only while the loss is between 3% and 50% of its start: near the start all
examples look alike, and near zero even large batches give a heavy-tailed band.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve
from worker.diagnosis.findings import Finding, num, step
from worker.diagnosis.series import RunData

KIND = "batch_variance"
LEVEL_RANGE = (0.03, 0.5)  # judge buckets whose level is 3%..50% of the start level
MIN_BUCKETS = 8  # such buckets needed
N_BUCKETS = 50  # the band is read in up to 50 buckets...
MIN_PER_BUCKET = 10  # ...of at least 10 batch losses each (else it is not measurable)
MIN_SKEW = 1.3  # median of bucket mean / bucket median >= 1.3 (band stretched upwards)
MAX_LOW = 0.6  # median of bucket lower quartile / median <= 0.6 (and downwards)


def measure(run: RunData) -> dict | None:
    """Band shape over the judged buckets, or None without data."""
    c = curve(run, "loss")
    if c is None or c.start <= 0:
        return None
    b = run.get("loss").buckets(N_BUCKETS, MIN_PER_BUCKET)
    med = b.median
    level = med / c.start
    m = (level >= LEVEL_RANGE[0]) & (level <= LEVEL_RANGE[1]) & (med > 0)
    if m.sum() < MIN_BUCKETS:
        return None
    return {"skew": float(np.median(b.mean[m] / med[m])),
            "low": float(np.median(b.q25[m] / med[m])),
            "high": float(np.median(b.q75[m] / med[m])), "buckets": int(m.sum()),
            "level": float(np.median(med[m])), "window_start": int(b.step_lo[m][0]),
            "last_step": c.last_step}


def rule(run: RunData) -> list[Finding]:
    """Fire when the band is stretched both ways around its median."""
    m = measure(run)
    if m is None or m["skew"] < MIN_SKEW or m["low"] > MAX_LOW:
        return []
    bs = run.config.get("batch_size")
    title = (f"Batch losses spread widely around {num(m['level'])}: mean {num(m['skew'], 2)}x "
             f"the median, a quarter of batches below {num(m['low'], 2)}x it "
             f"(since step {step(m['window_start'])})")
    if isinstance(bs, (int, float)) and bs > 0:
        rec = f"Raise the batch size from {int(bs)} to about {max(32, int(bs) * 8)}"
    else:
        rec = "Raise the batch size (about 8x)"
    rec += " (or accumulate gradients over several batches), scaling the learning rate with it."
    return [Finding(KIND, "warning", m["window_start"], m["last_step"], None, title, rec, m)]
