"""Shared reading of the per-layer signals of `watch(model)`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from worker.diagnosis.series import RunData, SeriesData


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


def stuck_high(run: RunData, prefix: str, frac: float, min_points: int, level: float,
               floor: float) -> Iterator[tuple[str, np.ndarray, float, float]]:
    """(module, window steps, median, minimum) of each `prefix<module>` series whose recent
    window (see `recent`) has a median >= `level` and never drops below `floor`."""
    for module, s in run.with_prefix(prefix).items():
        win = recent(s, frac, min_points)
        if win is None:
            continue
        steps, v = win
        med, low = float(np.median(v)), float(v.min())
        if med >= level and low >= floor:
            yield module, steps, med, low


def early(s: SeriesData, frac: float, min_points: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Finite (steps, values) of the first `frac` of the span (>= `min_points`), or None."""
    steps, values = s.finite_points()
    if values.size < min_points:
        return None
    cut = steps[0] + frac * (steps[-1] - steps[0])
    j = max(min_points, int(np.searchsorted(steps, cut, side="right")))
    return steps[:j], values[:j]


def early_medians(run: RunData, prefix: str, frac: float, min_points: int, skip: int = 1,
                  until: float = float("inf")) -> dict[str, tuple[float, int, int]]:
    """module -> (median, first step, last step) of each `prefix<module>` series over the
    first `frac` of its span (see `early`), its points after `until` dropped and its first
    `skip` points left out (an optimizer's state warming up); modules left with fewer than
    `min_points` points are omitted."""
    out = {}
    for module, s in run.with_prefix(prefix).items():
        win = early(s, frac, min_points + skip)
        if win is None:
            continue
        keep = win[0] <= until
        steps, v = win[0][keep][skip:], win[1][keep][skip:]
        if v.size >= min_points:
            out[module] = (float(np.median(v)), int(steps[0]), int(steps[-1]))
    return out


def names(modules: list[str], limit: int = 4) -> str:
    """'`fc1`, `fc2` and 3 more'."""
    shown = ", ".join(f"`{m}`" for m in modules[:limit])
    return shown + (f" and {len(modules) - limit} more" if len(modules) > limit else "")
