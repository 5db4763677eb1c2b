"""The chunk codec and the newest-wins merge, on arrays."""

from __future__ import annotations

import numpy as np
import pytest

from server.metrics import codec
from server.metrics.points import Points, merge_newest_wins


@pytest.mark.parametrize(
    "values",
    [
        np.array([1.5, np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308]),
        np.full(5000, 3e-4),  # constant: stored compressed
        np.random.default_rng(1).standard_normal(5000),  # noisy: stored raw
        np.empty(0),
    ],
)
def test_values_round_trip_bit_for_bit(values):
    back = codec.decode_values(codec.encode_values(values))
    assert back.dtype == np.float64
    assert back.view(np.int64).tolist() == values.view(np.int64).tolist()


def test_nan_payload_bits_survive():
    weird_nan = np.array([0x7FF8DEADBEEF0001], dtype=np.int64).view(np.float64)
    back = codec.decode_values(codec.encode_values(weird_nan))
    assert back.view(np.int64)[0] == 0x7FF8DEADBEEF0001


@pytest.mark.parametrize(
    "steps",
    [
        np.arange(10_000),
        np.arange(7, 90),
        np.array([0, 1, 2, 4]),
        np.array([0, 7, 2**63 - 1]),
        np.array([5]),
        np.array([], int),
    ],
)
def test_steps_round_trip(steps):
    steps = steps.astype(np.int64)
    assert codec.decode_steps(codec.encode_steps(steps)).tolist() == steps.tolist()


def test_walls_round_trip_to_the_microsecond():
    walls = 1.7e9 + np.cumsum(np.random.default_rng(2).uniform(0, 0.1, 1000))
    back = codec.decode_walls(codec.encode_walls(walls))
    assert np.max(np.abs(back - walls)) < 1e-6


def test_sequential_steps_cost_almost_nothing():
    assert len(codec.encode_steps(np.arange(100_000, dtype=np.int64))) < 10_000  # < 0.1 B a point


def _pts(steps, values):
    return Points(np.array(steps, np.int64), np.array(values, float), None)


def test_merge_newest_wins_on_overlap():
    old = _pts([0, 1, 2, 3], [0.0, 1.0, 2.0, 3.0])
    new = _pts([2, 3, 4], [20.0, 30.0, 40.0])
    merged = merge_newest_wins([old, new])
    assert merged.steps.tolist() == [0, 1, 2, 3, 4]
    assert merged.values.tolist() == [0.0, 1.0, 20.0, 30.0, 40.0]


def test_merge_keeps_order_when_disjoint_and_sorts_out_of_order_parts():
    late_replay = _pts([0, 1], [9.0, 9.5])
    merged = merge_newest_wins([_pts([5, 6], [5.0, 6.0]), late_replay])
    assert merged.steps.tolist() == [0, 1, 5, 6]
    assert merged.values.tolist() == [9.0, 9.5, 5.0, 6.0]
