"""Downsampling never hides a spike, a NaN or an Inf, and stays bounded."""

from __future__ import annotations

import numpy as np

from server.metrics.downsample import downsample
from server.metrics.points import Points


def _series(n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.int64)
    values = 2.0 * np.exp(-steps / (n / 5)) + 0.05 * rng.standard_normal(n)
    return Points(steps, values, None)


def test_a_single_spike_survives():
    pts = _series()
    pts.values[123_457] = 50.0
    pts.values[99_001] = -40.0
    out = downsample(pts, 2000)
    assert len(out) <= 2100
    assert 123_457 in out.steps.tolist() and 99_001 in out.steps.tolist()
    assert out.values.max() == 50.0 and out.values.min() == -40.0


def test_every_kind_of_non_finite_value_is_kept():
    pts = _series()
    pts.values[[10, 150_000]] = np.nan
    pts.values[70_000] = np.inf
    pts.values[70_001] = -np.inf
    out = downsample(pts, 1000)
    kept = dict(zip(out.steps.tolist(), out.values.tolist(), strict=True))
    assert np.isnan(kept[10]) and np.isnan(kept[150_000])
    assert kept[70_000] == np.inf and kept[70_001] == -np.inf


def test_a_run_that_turns_nan_stays_bounded_but_shows_where():
    pts = _series()
    pts.values[100_000:] = np.nan
    out = downsample(pts, 1000)
    assert len(out) <= 2100
    nan_steps = out.steps[np.isnan(out.values)]
    assert nan_steps.min() == 100_000 and nan_steps.max() >= 199_000


def test_first_and_last_points_are_kept_and_order_is_by_step():
    out = downsample(_series(), 500)
    assert out.steps[0] == 0 and out.steps[-1] == 199_999
    assert np.all(np.diff(out.steps) > 0)


def test_small_series_are_returned_whole():
    pts = _series(100)
    assert downsample(pts, 1000) is pts
