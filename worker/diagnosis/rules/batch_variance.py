"""batch_variance: the band of batch-to-batch loss is wide for its level.

Tip: seeds/002 (when the upper and lower bounds of the oscillation widen, batch variance is
high: raise the batch size).
Read in buckets of consecutive batch losses. Two views of the band:

- its shape: with small batches most batches hold only easy examples and a few hold the hard
  ones, so the band stretches far above its median (bucket mean well above bucket median)
  and far below it (lower quartile well under the median);
- its width for the level: the bucket's point-to-point noise (median difference of
  consecutive batch losses, so the trend inside the bucket does not count) over its median,
  divided by how far the loss has fallen from its start (1 - level, at least `DROP_FLOOR`).
  Examples differ more as the net learns, and a batch of B examples averages that spread
  down by about sqrt(B): on the benchmark, healthy batches of 16-128 keep this ratio under
  0.7 in 95% of runs (a median 0.4), batches of 1-2 give about 0.6-2 at any level, even
  before the loss has moved much.

The shape and a very wide band are judged without the config, only while the loss is between
5% and 50% of its start: near the start all examples look alike, and near zero even large
batches give a heavy-tailed band (a few misclassified examples). A configured batch size of
at most `SMALL_BATCH` is supporting evidence only: it lets the rule judge the width from the
first buckets on, still requiring a band wider than almost every healthy run shows. A
configured batch size above `SMALL_BATCH` is evidence the other way: the rule stays silent
(on the benchmark the only wide bands with batches of 16 or more came from memorising a
tiny training set, where a few hard examples make a heavy tail that is overfitting's sign,
not the batch size's).
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.curve import curve
from worker.diagnosis.findings import Finding, num, step
from worker.diagnosis.series import RunData

KIND = "batch_variance"
LEVEL_RANGE = (0.05, 0.5)  # shape and config-free width: buckets at 5%..50% of the start level
MIN_BUCKETS = 8  # such buckets needed
N_BUCKETS = 50  # the band is read in up to 50 buckets...
MIN_PER_BUCKET = 10  # ...of at least 10 batch losses each (else it is not measurable)
MIN_SKEW = 1.3  # median of bucket mean / bucket median >= 1.3 (band stretched upwards)
MAX_LOW = 0.6  # median of bucket lower quartile / median <= 0.6 (and downwards)
DROP_FLOOR = 0.05  # width: noise/median is divided by max(1 - level, 0.05)
MIN_WIDTH = 1.5  # config-free: median width >= 1.5 over the 5%..50% buckets (others <= 1.3)
SMALL_BATCH = 8  # a configured batch_size <= 8 is a small batch...
MIN_WIDTH_SMALL = 0.7  # ...then median width >= 0.7 (above 95% of healthy runs' highest)...
MIN_BUCKETS_SMALL = 5  # ...over >= 5 buckets whose level is >= 5% of the start (any prefix)


def measure(run: RunData) -> dict | None:
    """Band shape and width over the judged buckets, or None without data."""
    c = curve(run, "loss")
    if c is None or c.start <= 0:
        return None
    b = run.get("loss").buckets(N_BUCKETS, MIN_PER_BUCKET)
    med = b.median
    level = med / c.start
    ok = (med > 0) & np.isfinite(b.noise)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = b.noise / med / np.maximum(1.0 - level, DROP_FLOOR)
    m = ok & (level >= LEVEL_RANGE[0]) & (level <= LEVEL_RANGE[1])
    judged = ok & (level >= LEVEL_RANGE[0])  # with a small configured batch
    bs = run.batch_size
    out: dict = {"buckets": int(m.sum()), "batch_size": bs, "last_step": c.last_step}
    if m.sum() >= MIN_BUCKETS:
        out.update(skew=float(np.median(b.mean[m] / med[m])),
                   low=float(np.median(b.q25[m] / med[m])),
                   high=float(np.median(b.q75[m] / med[m])),
                   width=float(np.median(width[m])), level=float(np.median(med[m])),
                   window_start=int(b.step_lo[m][0]))
    if bs is not None and bs <= SMALL_BATCH and judged.sum() >= MIN_BUCKETS_SMALL:
        out.update(width_all=float(np.median(width[judged])),
                   buckets_all=int(judged.sum()),
                   noise_all=float(np.median(b.noise[judged] / med[judged])),
                   level_all=float(np.median(med[judged])),
                   start_all=int(b.step_lo[judged][0]))
    return out if ("skew" in out or "width_all" in out) else None


def rule(run: RunData) -> list[Finding]:
    """Fire when the band is stretched both ways around its median, or much wider than the
    fall of the loss explains (lower bar when the config says the batches are tiny)."""
    m = measure(run)
    if m is None:
        return []
    bs = m["batch_size"]
    if bs is not None and bs > SMALL_BATCH:
        return []
    if "skew" in m and m["skew"] >= MIN_SKEW and m["low"] <= MAX_LOW:
        title = (f"Batch losses spread widely around {num(m['level'])}: mean "
                 f"{num(m['skew'], 2)}x the median, a quarter of batches below "
                 f"{num(m['low'], 2)}x it (since step {step(m['window_start'])})")
        start = m["window_start"]
    elif "skew" in m and m["width"] >= MIN_WIDTH:
        title = (f"Batch losses spread widely around {num(m['level'])}: batch-to-batch noise "
                 f"is {num(m['width'], 2)}x what the loss's fall so far explains "
                 f"(since step {step(m['window_start'])})")
        start = m["window_start"]
    elif m.get("width_all", 0.0) >= MIN_WIDTH_SMALL:
        title = (f"Batches of {bs} give a wide band of losses: batch-to-batch noise is "
                 f"{num(100 * m['noise_all'], 2)}% of the loss ({num(m['level_all'])}) "
                 f"since step {step(m['start_all'])}")
        start = m["start_all"]
    else:
        return []
    if bs is not None:
        rec = f"Raise the batch size from {bs} to about {max(32, bs * 8)}"
    else:
        rec = "Raise the batch size (about 8x)"
    rec += " (or accumulate gradients over several batches), scaling the learning rate with it."
    return [Finding(KIND, "warning", start, m["last_step"], None, title, rec, m)]
