"""Benchmark traces on disk: one compressed `.npz` per run, read back as `RunData`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from worker.diagnosis import RunData, SeriesData

HERE = Path(__file__).resolve().parent
TRACES = HERE / "traces"
LABELS = TRACES / "labels.json"
_F32_MAX = 1e37  # larger finite values are kept as float64 (float32 would make them Inf)


def save(path: Path, series: dict[str, tuple[np.ndarray, np.ndarray]], config: dict) -> None:
    """Write {key: (steps, values)} and the config, compactly (float32 where exact enough)."""
    arrays: dict[str, np.ndarray] = {}
    keys = list(series)
    for i, key in enumerate(keys):
        steps, values = series[key]
        finite = values[np.isfinite(values)]
        small = finite.size == 0 or float(np.abs(finite).max()) < _F32_MAX
        arrays[f"s{i}"] = np.asarray(steps, dtype=np.int32)
        arrays[f"v{i}"] = np.asarray(values, dtype=np.float32 if small else np.float64)
    meta = json.dumps({"keys": keys, "config": config})
    np.savez_compressed(path, meta=np.array(meta), **arrays)


def load(path: Path) -> RunData:
    """Read a trace written by `save` as a RunData (total_steps from the config)."""
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        series = {key: SeriesData(z[f"s{i}"], z[f"v{i}"]) for i, key in enumerate(meta["keys"])}
    config = meta["config"]
    return RunData(series, config, config.get("total_steps"))


def labels(folder: Path = TRACES) -> dict[str, dict]:
    """labels.json: run name -> {family, must, may, onset, steps, healthy}."""
    return json.loads((folder / LABELS.name).read_text())


def load_run(name: str, folder: Path = TRACES) -> RunData:
    """The trace of run `name`."""
    return load(folder / f"{name}.npz")
