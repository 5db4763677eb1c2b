"""Benchmark traces on disk: one compressed `.npz` per run, read back as `RunData`.

Layout: one folder per draw of the benchmark (the same recipes, seeds + offset),
`traces/d<offset>/`, each with its runs and a `labels.json`. DRAWS says which draws tune
the rules and which are held out (scored once, never tuned on).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from worker.diagnosis import RunData, SeriesData

HERE = Path(__file__).resolve().parent
TRACES = HERE / "traces"
LABELS = Path("labels.json")
# seed offset -> split
DRAWS = {0: "tuning", 200: "tuning", 400: "tuning", 600: "tuning", 800: "tuning",
         1000: "tuning", 1200: "tuning", 1400: "held-out", 1600: "held-out"}
SPLITS = ("tuning", "held-out")
TUNING = TRACES / "d0"  # the draw tests read
_F32_MAX = 1e37  # larger finite values are kept as float64 (float32 would make them Inf)


def save(path: Path, series: dict[str, tuple[np.ndarray, np.ndarray]], config: dict) -> None:
    """Write {key: (steps, values)} and the config, compactly (float32 where exact enough)."""
    arrays: dict[str, np.ndarray] = {}
    keys = list(series)
    for i, key in enumerate(keys):
        steps, values = series[key]
        finite = values[np.isfinite(values)]
        small = finite.size == 0 or float(np.abs(finite).max()) < _F32_MAX
        # step deltas: mostly one constant, which compresses to almost nothing
        arrays[f"d{i}"] = np.diff(np.asarray(steps, dtype=np.int64), prepend=0).astype(np.int32)
        arrays[f"v{i}"] = np.asarray(values, dtype=np.float32 if small else np.float64)
    meta = json.dumps({"keys": keys, "config": config})
    np.savez_compressed(path, meta=np.array(meta), **arrays)


def _steps(z, i: int) -> np.ndarray:
    if f"d{i}" in z.files:
        return np.cumsum(z[f"d{i}"].astype(np.int64))
    return z[f"s{i}"]  # the older layout: absolute steps


def draw_dir(offset: int) -> Path:
    """The folder of the draw with this seed offset."""
    return TRACES / f"d{offset}"


def draws(split: str | None = None) -> list[tuple[int, Path]]:
    """(offset, folder) of the draws on disk in `split` (every split when None)."""
    return [(o, draw_dir(o)) for o, sp in sorted(DRAWS.items())
            if (split is None or sp == split) and (draw_dir(o) / LABELS.name).exists()]


def load(path: Path) -> RunData:
    """Read a trace written by `save` as a RunData (total_steps from the config)."""
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        series = {key: SeriesData(_steps(z, i), z[f"v{i}"]) for i, key in enumerate(meta["keys"])}
    config = meta["config"]
    return RunData(series, config, config.get("total_steps"))


def labels(folder: Path = TUNING) -> dict[str, dict]:
    """labels.json: run name -> {family, must, may, onset, steps, healthy}."""
    return json.loads((folder / LABELS.name).read_text())


def load_run(name: str, folder: Path = TUNING) -> RunData:
    """The trace of run `name`."""
    return load(folder / f"{name}.npz")
