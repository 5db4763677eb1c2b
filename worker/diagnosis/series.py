"""The numbers a rule sees: one series per key, the run that holds them, bucket aggregates.

`SeriesData` holds one key's points (steps ascending and unique, float64 values that may be
NaN or +-Inf). `Buckets` summarises its finite points in about `n` buckets of equal point
count with vectorised NumPy (no Python loop over points), so a trend rule costs the same on
a run of 100 points and of 1,000,000. Minima and maxima keep every extreme; medians keep a
level that batch noise does not move. Checks for NaN and spikes read the raw arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_GAUSS_DIFF_MAD = 0.6745 * np.sqrt(2.0)  # median |x1 - x2| of two N(0, s^2) draws, over s


@dataclass(frozen=True)
class Buckets:
    """Per-bucket aggregates of a series' finite points (arrays of length `len(self)`)."""

    step: np.ndarray  # the step of each bucket's middle point (int64)
    step_lo: np.ndarray  # first step in the bucket
    step_hi: np.ndarray  # last step in the bucket
    count: np.ndarray  # finite points in the bucket
    mean: np.ndarray
    median: np.ndarray
    min: np.ndarray
    max: np.ndarray
    q25: np.ndarray
    q75: np.ndarray
    noise: np.ndarray  # robust point-to-point noise (std of a Gaussian), NaN with < 3 points

    def __len__(self) -> int:
        return int(self.step.size)


def _sorted_rows(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of each [edges[i], edges[i+1]) slice as a row, sorted, padded with +inf."""
    counts = np.diff(edges)
    width = int(counts.max())
    col = np.arange(width)
    valid = col[None, :] < counts[:, None]
    idx = np.where(valid, edges[:-1, None] + col[None, :], 0)
    rows = np.where(valid, values[idx], np.inf)
    rows.sort(axis=1)
    return rows, counts


def _row_quantile(rows: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    pos = q * (counts - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, counts - 1)
    r = np.arange(rows.shape[0])
    frac = pos - lo
    out = rows[r, lo]
    m = frac > 0
    out[m] += frac[m] * (rows[r[m], hi[m]] - out[m])
    return out


def make_buckets(steps: np.ndarray, values: np.ndarray, n: int, min_size: int = 1) -> Buckets:
    """Aggregate finite (steps, values) into about `n` buckets of >= `min_size` points."""
    n = max(1, min(n, steps.size // max(1, min_size)))
    edges = np.unique(np.linspace(0, steps.size, n + 1).round().astype(np.int64))
    if steps.size == 0:
        empty_f, empty_i = np.empty(0), np.empty(0, dtype=np.int64)
        return Buckets(empty_i, empty_i, empty_i, empty_i, *([empty_f] * 7))
    starts, ends = edges[:-1], edges[1:] - 1
    rows, counts = _sorted_rows(values, edges)
    sums = np.add.reduceat(values, starts)
    # Point-to-point differences remove the trend; their median gives the batch noise.
    diffs = np.abs(np.diff(values, prepend=values[:1]))
    diffs[starts] = np.inf  # no difference across a bucket boundary
    drows, _ = _sorted_rows(diffs, edges)
    dcounts = counts - 1
    noise = np.where(dcounts >= 2,
                     _row_quantile(drows, np.maximum(dcounts, 1), 0.5) / _GAUSS_DIFF_MAD,
                     np.nan)
    return Buckets(
        step=steps[(starts + ends) // 2], step_lo=steps[starts], step_hi=steps[ends],
        count=counts, mean=sums / counts, median=_row_quantile(rows, counts, 0.5),
        min=rows[:, 0], max=rows[np.arange(len(counts)), counts - 1],
        q25=_row_quantile(rows, counts, 0.25), q75=_row_quantile(rows, counts, 0.75),
        noise=noise)


@dataclass(frozen=True, eq=False)
class SeriesData:
    """One key's points: `steps` (int64, ascending, unique) and `values` (float64).

    Values may hold NaN or +-Inf. Use `from_unsorted` for points in any order.
    """

    steps: np.ndarray
    values: np.ndarray
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps, dtype=np.int64).reshape(-1)
        values = np.asarray(self.values, dtype=np.float64).reshape(-1)
        if steps.size != values.size:
            raise ValueError(f"{steps.size} steps but {values.size} values")
        if steps.size > 1 and not bool(np.all(np.diff(steps) > 0)):
            raise ValueError("steps must be strictly ascending (use SeriesData.from_unsorted)")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "values", values)

    @classmethod
    def from_unsorted(cls, steps: Any, values: Any) -> SeriesData:
        """Sort by step; of repeated steps the last given value wins."""
        steps = np.asarray(steps, dtype=np.int64).reshape(-1)
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        keep = np.ones(steps.size, dtype=bool)
        keep[:-1] = steps[1:] != steps[:-1]
        return cls(steps[keep], values[keep])

    def __len__(self) -> int:
        return int(self.steps.size)

    @property
    def finite(self) -> np.ndarray:
        """Boolean mask of finite values (cached)."""
        if "finite" not in self._cache:
            self._cache["finite"] = np.isfinite(self.values)
        return self._cache["finite"]

    def finite_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of the finite points only (cached)."""
        if "fp" not in self._cache:
            mask = self.finite
            self._cache["fp"] = (self.steps[mask], self.values[mask])
        return self._cache["fp"]

    def buckets(self, n: int = 100, min_size: int = 1) -> Buckets:
        """Aggregates of the finite points in about `n` buckets (cached per arguments)."""
        key = ("b", n, min_size)
        if key not in self._cache:
            self._cache[key] = make_buckets(*self.finite_points(), n, min_size)
        return self._cache[key]

    def until(self, step: int) -> SeriesData:
        """The points with step <= `step` (a view of the arrays)."""
        end = int(np.searchsorted(self.steps, step, side="right"))
        return SeriesData(self.steps[:end], self.values[:end])

    def value_at(self, steps: np.ndarray) -> np.ndarray:
        """The value at or just before each of `steps` (NaN before the first point)."""
        idx = np.searchsorted(self.steps, steps, side="right") - 1
        out = self.values[np.maximum(idx, 0)].astype(np.float64)
        out[idx < 0] = np.nan
        return out


def _count(value: Any) -> int | None:
    """A config value that is a positive count (an int, or a whole-ish float), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 2**62:
        return int(value)
    return None


@dataclass(frozen=True, eq=False)
class RunData:
    """A run as the rules see it: series by key, the config, and a total-steps hint.

    `series` keeps the order in which keys were first logged (the SDK logs layers in
    `named_modules()` order). `total_steps`, when known, is the planned length of the run;
    when not given it is read from a positive integer `config["total_steps"]`.
    """

    series: Mapping[str, SeriesData]
    config: Mapping[str, Any] = field(default_factory=dict)
    total_steps: int | None = None

    def __post_init__(self) -> None:
        if self.total_steps is None:
            object.__setattr__(self, "total_steps", _count(self.config.get("total_steps")))

    @property
    def batch_size(self) -> int | None:
        """A positive integer `config["batch_size"]`, else None."""
        return _count(self.config.get("batch_size"))

    def get(self, key: str) -> SeriesData | None:
        """The series `key`, or None when it is absent or empty."""
        s = self.series.get(key)
        return s if s is not None and len(s) else None

    def with_prefix(self, prefix: str) -> dict[str, SeriesData]:
        """Non-empty series whose key starts with `prefix`, keyed by the rest of the key."""
        return {k[len(prefix):]: s for k, s in self.series.items()
                if k.startswith(prefix) and len(k) > len(prefix) and len(s)}

    @property
    def last_step(self) -> int | None:
        """The largest step of any series (None for an empty run)."""
        ends = [int(s.steps[-1]) for s in self.series.values() if len(s)]
        return max(ends) if ends else None

    def until(self, step: int) -> RunData:
        """The run as it was when `step` had just been logged (for replays and tests)."""
        return RunData({k: s.until(step) for k, s in self.series.items()}, self.config,
                       self.total_steps)

    @classmethod
    def from_points(cls, points: Mapping[str, tuple[Any, Any]],
                    config: Mapping[str, Any] | None = None,
                    total_steps: int | None = None) -> RunData:
        """Build a run from {key: (steps, values)} in any order."""
        series = {k: SeriesData.from_unsorted(s, v) for k, (s, v) in points.items()}
        return cls(series, dict(config or {}), total_steps)
