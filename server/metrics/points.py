"""Arrays of points and the newest-wins merge shared by reads and compaction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Points:
    """Points of one key: steps ascending and unique after :func:`merge_newest_wins`."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64
    walls: np.ndarray | None = None  # float64 Unix seconds

    def __len__(self) -> int:
        return len(self.steps)

    @classmethod
    def empty(cls, with_walls: bool = False) -> Points:
        return cls(
            np.empty(0, np.int64),
            np.empty(0, np.float64),
            np.empty(0, np.float64) if with_walls else None,
        )


def merge_newest_wins(parts: list[Points]) -> Points:
    """Concatenate parts given oldest first; where a step repeats, the newest value wins.

    Returns the points sorted by step with unique steps.
    """
    if not parts:
        return Points.empty()
    if len(parts) == 1:
        return sorted_unique(parts[0])
    with_walls = parts[0].walls is not None
    merged = Points(
        np.concatenate([p.steps for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.walls for p in parts]) if with_walls else None,
    )
    # Parts already in step order and disjoint (an append-only run) need no sort at all;
    # sorted_unique checks that in one vectorised pass.
    return sorted_unique(merged)


def sorted_unique(pts: Points) -> Points:
    """The points sorted by step; where a step repeats, its last value is kept."""
    if _strictly_increasing(pts.steps):
        return pts
    order = np.argsort(pts.steps, kind="stable")
    s = pts.steps[order]
    last = np.empty(len(s), dtype=bool)
    last[:-1] = s[1:] != s[:-1]
    last[-1:] = True
    keep = order[last]
    return Points(pts.steps[keep], pts.values[keep], None if pts.walls is None else pts.walls[keep])


def _strictly_increasing(steps: np.ndarray) -> bool:
    return len(steps) < 2 or bool(np.all(steps[1:] > steps[:-1]))
