"""Shared reading of the per-layer signals of `watch(model)`."""

from __future__ import annotations

import numpy as np

from worker.diagnosis.series import SeriesData


def window_start(steps: np.ndarray, frac: float, min_points: int) -> int:
    """Index where the last `frac` of the step span (and at least `min_points`) begins."""
    if steps.size == 0:
        return 0
    cut = steps[-1] - frac * (steps[-1] - steps[0])
    i = int(np.searchsorted(steps, cut, side="left"))
    return max(0, min(i, steps.size - min_points))


def recent(s: SeriesData, frac: float, min_points: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Finite (steps, values) of the last `frac` of the span (>= `min_points`), or None."""
    steps, values = s.finite_points()
    if values.size < min_points:
        return None
    i = window_start(steps, frac, min_points)
    return steps[i:], values[i:]


def early(s: SeriesData, frac: float, min_points: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Finite (steps, values) of the first `frac` of the span (>= `min_points`), or None."""
    steps, values = s.finite_points()
    if values.size < min_points:
        return None
    cut = steps[0] + frac * (steps[-1] - steps[0])
    j = max(min_points, int(np.searchsorted(steps, cut, side="right")))
    return steps[:j], values[:j]


def names(modules: list[str], limit: int = 4) -> str:
    """'`fc1`, `fc2` and 3 more'."""
    shown = ", ".join(f"`{m}`" for m in modules[:limit])
    return shown + (f" and {len(modules) - limit} more" if len(modules) > limit else "")
