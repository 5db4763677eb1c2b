"""Robust views of a noisy curve shared by the curve rules.

Batch losses are noisy; the rules read levels as medians of buckets, trends as Theil-Sen
slopes over bucket medians, and noise as the median point-to-point difference, so one odd
batch never moves a verdict (NaN and spike checks read every raw point instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worker.diagnosis.series import Buckets, RunData

MIN_POINTS = 20  # fewer finite points than this: a curve rule stays silent
N_BUCKETS = 100  # resolution of the smoothed curve (about 1% of the run each)
MIN_BUCKET = 3  # points per bucket at least, so a bucket median is a median
START_POINTS = (5, 200)  # the start level is the median of the first 1% of points, in these bounds


def theil_sen(x: np.ndarray, y: np.ndarray, max_points: int = 120) -> float:
    """Median of pairwise slopes (robust to a third of outliers); 0.0 with < 2 points."""
    if x.size < 2:
        return 0.0
    if x.size > max_points:
        idx = np.linspace(0, x.size - 1, max_points).round().astype(np.int64)
        x, y = x[idx], y[idx]
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    ok = dx != 0
    if not ok.any():
        return 0.0
    return float(np.median((y[j] - y[i])[ok] / dx[ok]))


def half_change(y: np.ndarray) -> float:
    """(median of the second half - median of the first half) / median, a trend that
    swings cannot fake (a line fit through a wave depends on where the wave is cut)."""
    if y.size < 2:
        return 0.0
    level = float(np.median(y))
    if level == 0:
        return 0.0
    h = y.size // 2
    return (float(np.median(y[h:])) - float(np.median(y[:h]))) / abs(level)


@dataclass(frozen=True)
class Curve:
    """A series' finite points with its bucket medians and start level."""

    steps: np.ndarray
    values: np.ndarray
    b: Buckets
    start: float  # level at the start: median of the first few points

    @property
    def first_step(self) -> int:
        return int(self.steps[0])

    @property
    def last_step(self) -> int:
        return int(self.steps[-1])

    @property
    def span(self) -> int:
        return max(1, self.last_step - self.first_step)

    def at_frac(self, frac: float) -> float:
        """The step at fraction `frac` of the curve's span."""
        return self.first_step + frac * self.span

    def level(self, s0: float, s1: float) -> float:
        """Median of the bucket medians whose middle step lies in [s0, s1] (NaN if none)."""
        m = (self.b.step >= s0) & (self.b.step <= s1)
        return float(np.median(self.b.median[m])) if m.any() else float("nan")

    def level_last(self, frac: float) -> float:
        """Level over the last `frac` of the span (at least the last bucket)."""
        s0 = min(self.at_frac(1.0 - frac), float(self.b.step[-1]))
        return self.level(s0, self.last_step)

    def slope(self, s0: float, s1: float) -> float:
        """Theil-Sen slope (per step) of the bucket medians in [s0, s1]."""
        m = (self.b.step >= s0) & (self.b.step <= s1)
        return theil_sen(self.b.step[m].astype(np.float64), self.b.median[m])

    def swing(self, s0: float, s1: float) -> tuple[float, float]:
        """How much the bucket medians in [s0, s1] wander around their Theil-Sen trend.

        Returns (swing, excess): the robust std of the residuals, and its ratio to what
        batch noise alone gives a bucket median (about 1.25 noise / sqrt(points per bucket)).
        A ratio near 1 is sampling noise; well above 1, the curve itself moves.
        """
        m = (self.b.step >= s0) & (self.b.step <= s1)
        if m.sum() < 3:
            return 0.0, 0.0
        x = self.b.step[m].astype(np.float64)
        y = self.b.median[m]
        slope = theil_sen(x, y)
        resid = y - slope * x
        swing = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
        expected = 1.2533 * self.noise(s0, s1) / np.sqrt(float(np.median(self.b.count[m])))
        return swing, (swing / expected if expected > 0 else float("inf"))

    def noise(self, s0: float, s1: float) -> float:
        """Median point-to-point noise of the buckets in [s0, s1] (NaN if unknown)."""
        m = (self.b.step >= s0) & (self.b.step <= s1) & np.isfinite(self.b.noise)
        return float(np.median(self.b.noise[m])) if m.any() else float("nan")


def curve(run: RunData, key: str, min_points: int = MIN_POINTS,
          nonnegative: bool = True) -> Curve | None:
    """The curve of `key`, or None when it has too few finite points to judge.

    With `nonnegative`, a series that goes below zero (a log-likelihood, a GAN loss) is
    refused too: the rules read ratios of levels, which need a loss bounded below by 0.
    """
    s = run.get(key)
    if s is None:
        return None
    steps, values = s.finite_points()
    if values.size < min_points or (nonnegative and float(values.min()) < 0.0):
        return None
    lo, hi = START_POINTS
    k = int(min(hi, max(lo, values.size // 100)))
    b = s.buckets(N_BUCKETS, MIN_BUCKET)
    return Curve(steps, values, b, float(np.median(values[:k])))


def lr_spread(run: RunData, s0: float, s1: float) -> float:
    """max/min of the positive finite logged `lr` in steps [s0, s1]; 1.0 when not logged."""
    lr = run.get("lr")
    if lr is None:
        return 1.0
    steps, values = lr.finite_points()
    m = (steps >= s0) & (steps <= s1) & (values > 0)
    return float(values[m].max() / values[m].min()) if m.any() else 1.0
