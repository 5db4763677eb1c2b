"""Float64 in JSON: finite numbers as numbers, NaN and ±Inf as the strings of docs/api.md."""

from __future__ import annotations

import math

import numpy as np

NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"


def json_float(x: float | None) -> float | str | None:
    if x is None or math.isfinite(x):
        return x
    return NAN if math.isnan(x) else (POS_INF if x > 0 else NEG_INF)


def json_floats(values: np.ndarray) -> list:
    """A list for JSON: finite values as Python floats, the others as strings."""
    out = values.tolist()
    bad = np.flatnonzero(~np.isfinite(values))
    for i in bad.tolist():
        out[i] = json_float(out[i])
    return out
