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
    with_walls = parts[0].walls is not None
    if len(parts) == 1 and _strictly_increasing(parts[0].steps):
        return parts[0]
    # Fast path: parts already in step order and disjoint (the usual append-only run).
    if all(parts[i].steps[-1] < parts[i + 1].steps[0] for i in range(len(parts) - 1) if
           len(parts[i]) and len(parts[i + 1])) and all(_strictly_increasing(p.steps) for p in parts):
        return Points(
            np.concatenate([p.steps for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.walls for p in parts]) if with_walls else None,
        )
    steps = np.concatenate([p.steps for p in parts])
    values = np.concatenate([p.values for p in parts])
    walls = np.concatenate([p.walls for p in parts]) if with_walls else None
    order = np.argsort(steps, kind="stable")  # equal steps keep write order
    sorted_steps = steps[order]
    last_of_run = np.empty(len(order), dtype=bool)
    last_of_run[:-1] = sorted_steps[1:] != sorted_steps[:-1]
    last_of_run[-1:] = True
    keep = order[last_of_run]
    return Points(steps[keep], values[keep], walls[keep] if with_walls else None)


def _strictly_increasing(steps: np.ndarray) -> bool:
    return len(steps) < 2 or bool(np.all(steps[1:] > steps[:-1]))
