"""Downsampling that never hides an extreme: MinMax-LTTB on finite points, every non-finite kept.

MinMax-LTTB (tsdownsample) first keeps each bucket's min and max, then picks the visually
significant points among them, so a spike survives. NaN and ±Inf are not drawable values:
they are kept apart, one per kind per bucket, so a run that turns NaN for its last 500,000
steps still answers with a bounded number of points.
"""

from __future__ import annotations

import numpy as np
from tsdownsample import MinMaxLTTBDownsampler

from .points import Points

_lttb = MinMaxLTTBDownsampler()


def downsample(pts: Points, max_points: int) -> Points:
    """At most about ``max_points`` finite points plus non-finite markers, sorted by step."""
    n = len(pts)
    if n <= max_points:
        return pts
    max_points = max(max_points, 4)
    finite = np.isfinite(pts.values)
    keep = [np.array([0, n - 1])]
    finite_idx = np.flatnonzero(finite)
    if len(finite_idx) > max_points:
        chosen = _lttb.downsample(pts.steps[finite_idx], pts.values[finite_idx], n_out=max_points)
        keep.append(finite_idx[chosen])
    else:
        keep.append(finite_idx)
    nonfinite_idx = np.flatnonzero(~finite)
    if len(nonfinite_idx):
        keep.append(_first_per_bucket(pts, nonfinite_idx, max_points))
    idx = np.unique(np.concatenate(keep))
    return Points(pts.steps[idx], pts.values[idx], None if pts.walls is None else pts.walls[idx])


def _first_per_bucket(pts: Points, idx: np.ndarray, n_buckets: int) -> np.ndarray:
    """The first NaN, +Inf and -Inf of each of ``n_buckets`` equal step ranges."""
    lo, hi = int(pts.steps[0]), int(pts.steps[-1])
    width = max(1, -(-(hi - lo + 1) // n_buckets))
    bucket = (pts.steps[idx] - lo) // width
    v = pts.values[idx]
    kind = np.where(np.isnan(v), 0, np.where(v > 0, 1, 2))
    label = bucket * 3 + kind
    _, first = np.unique(label, return_index=True)
    return idx[first]
