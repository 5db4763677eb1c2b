"""Generate the labelled diagnosis benchmark: real small PyTorch runs, faulty and healthy.

    .venv/bin/python bench/diagnosis/generate.py                    # draw 0 -> traces/d0
    .venv/bin/python bench/diagnosis/generate.py --seed-offset 200  # -> traces/d200
    .venv/bin/python bench/diagnosis/generate.py --only low- --dry
    .venv/bin/python bench/diagnosis/generate.py --seed-offset 400 --relabel  # labels only

Each run is saved as traces/d<offset>/<name>.npz (signals under the keys of
docs/signals.md) and described in labels.json there: the kinds that must fire (`must`),
the kinds its fault may also legitimately cause (`may`: neither rewarded nor penalised),
and the onset step where known. The recipe's labels are then checked against what the
run shows by the written criteria of criteria.py (the same on every run); every change
is printed and kept in the label's `relabelled`. Healthy runs start with must = may = [].
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train  # noqa: E402
import criteria  # noqa: E402
import tracefile  # noqa: E402
from _faults import CURVE_FAULTS  # noqa: E402
from _layer_faults import LAYER_FAULTS  # noqa: E402
from _train import Spec  # noqa: E402

from worker.diagnosis import RunData, SeriesData  # noqa: E402


def cosine(total: int, s: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))


def warmup_cosine(total: int, warm: int, s: int) -> float:
    return (s + 1) / warm if s < warm else cosine(total - warm, s - warm)


def step_late(total: int, s: int) -> float:
    return 1.0 if s < 0.6 * total else (0.1 if s < 0.85 * total else 0.01)


# name, Spec fields: sensible hyper-parameters and lengths (trained about to the best
# validation loss, not far past it). Each base runs with several seeds.
HEALTHY = [
    ("mlp-digits-adam", dict(lr=1e-3, steps=700)),
    ("mlp-digits-adam-cos", dict(lr=3e-3, steps=800, schedule="cosine")),
    ("mlp-digits-sgd", dict(opt="sgd", lr=0.05, momentum=0.9, steps=300)),
    ("mlp-digits-sgd-step", dict(opt="sgd", lr=0.05, momentum=0.9, steps=800,
                                 schedule="step_late", weight_decay=5e-4)),
    ("mlp-digits-bs128", dict(lr=1e-3, bs=128, steps=500, model_kw=dict(width=128))),
    ("mlp-digits-tanh", dict(opt="sgd", lr=0.03, momentum=0.9, steps=600,
                             model_kw=dict(act="tanh"))),
    ("mlp-digits-sigmoid", dict(lr=3e-3, steps=800, model_kw=dict(act="sigmoid"))),
    ("mlp-digits-dropout", dict(lr=1e-3, steps=600, weight_decay=1e-4,
                                model_kw=dict(width=128, dropout=0.2))),
    ("mlp-digits-warmup", dict(lr=3e-3, steps=800, schedule="warmup")),
    ("mlp-digits-jitter", dict(lr=1e-3, steps=700, jitter=True)),
    ("mlp-digits-log10", dict(lr=3e-4, steps=2000, log_every=10, layer_every=20,
                              eval_every=100)),
    ("mlp-digits-short", dict(lr=3e-3, steps=60, eval_every=10, layer_every=2)),
    ("mlp-digits-sgd-plain", dict(opt="sgd", lr=0.2, steps=700)),
    ("cnn-digits-adam", dict(model="cnn", lr=1e-3, steps=600)),
    ("cnn-digits-sgd-cos", dict(model="cnn", opt="sgd", lr=0.05, momentum=0.9, steps=600,
                                schedule="cosine")),
    ("gru-seq-adam", dict(data="seq", model="gru", lr=3e-3, steps=600)),
    ("lstm-seq-adam-cos", dict(data="seq", model="lstm", lr=5e-3, steps=600,
                               schedule="cosine")),
    ("mlp-cancer-adam", dict(data="cancer", lr=1e-3, steps=250, eval_every=10)),
    ("mlp-wine-adam", dict(data="wine", lr=3e-3, bs=16, steps=80, eval_every=4)),
    ("mlp-moons-adam", dict(data="moons", lr=3e-3, steps=700, model_kw=dict(width=32))),
    ("mlp-hard-adam", dict(data="hard", lr=1e-3, steps=700, model_kw=dict(dropout=0.1))),
]
HEALTHY_SEEDS = (0, 1, 2, 3, 4)


def schedule(name: str | None, total: int):
    """A step -> lr multiplier for the healthy schedules named in HEALTHY."""
    if name is None:
        return None
    return {"cosine": partial(cosine, total), "warmup": partial(warmup_cosine, total, 80),
            "step_late": partial(step_late, total)}[name]


def healthy_specs() -> list[Spec]:
    out = []
    for base, kw in HEALTHY:
        for seed in HEALTHY_SEEDS:
            args = dict(kw)
            sched = schedule(args.pop("schedule", None), args["steps"])
            out.append(Spec(f"healthy-{base}-s{seed}", "healthy", seed, schedule=sched, **args))
    return out


def all_specs() -> list[Spec]:
    """Every benchmark run, faulty then healthy."""
    return [spec for make in CURVE_FAULTS + LAYER_FAULTS for spec in make()] + healthy_specs()


def _healthy_level(data: str, finals: dict[str, list[float]], folder: Path) -> float | None:
    """Median final training level of the draw's healthy runs on `data` (read from the
    folder's traces when this invocation did not train them, e.g. with --only)."""
    levels = finals.get(data)
    if not levels:
        levels = []
        for spec in healthy_specs():
            path = folder / f"{spec.name}.npz"
            if spec.data == data and path.exists():
                level = criteria.final_level(tracefile.load(path))
                if level is not None:
                    levels.append(level)
    return float(np.median(levels)) if levels else None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="run only names containing this text")
    p.add_argument("--dry", action="store_true", help="train, but write nothing")
    p.add_argument("--seed-offset", type=int, default=0,
                   help="add this to every seed (a fresh draw of the same benchmark)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default traces/d<seed offset>)")
    p.add_argument("--relabel", action="store_true",
                   help="train nothing: re-apply the recipe labels and criteria to the traces")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = args.out or tracefile.draw_dir(args.seed_offset)
    out.mkdir(parents=True, exist_ok=True)
    # --only updates its runs in the existing labels; a full run rewrites them all.
    labels_path = out / tracefile.LABELS.name
    labels = tracefile.labels(out) if args.only and labels_path.exists() else {}
    t0 = time.perf_counter()
    specs = [replace(s, seed=s.seed + args.seed_offset) for s in all_specs()
             if args.only in s.name]
    relabelled = []
    finals: dict[str, list[float]] = {}  # data set -> healthy runs' final training levels
    deferred = []  # runs whose criterion needs the healthy runs' levels (early_plateau)
    for spec in specs:
        t = time.perf_counter()
        if args.relabel:
            run = tracefile.load_run(spec.name, out)
            series = {k: (s.steps, s.values) for k, s in run.series.items()}
        else:
            series, config = _train.run(spec)
            run = None
        onset = spec.onset
        if callable(onset):
            onset = onset(series)
        lab = {"family": spec.family, "must": sorted(spec.must), "may": sorted(spec.may),
               "onset": onset, "steps": spec.steps}
        if not args.relabel and not args.dry:
            tracefile.save(out / f"{spec.name}.npz", series, config)
        if run is None:
            run = RunData({k: SeriesData(*sv) for k, sv in series.items()}, config)
        labels[spec.name] = lab
        if spec.family == "healthy":
            level = criteria.final_level(run)
            if level is not None:
                finals.setdefault(spec.data, []).append(level)
        loss = series["loss"][1]
        print(f"{spec.name:44s} {time.perf_counter() - t:5.1f}s  loss {loss[0]:.3g} -> "
              f"{np.nanmedian(loss[-max(1, loss.size // 20):]):.3g}", flush=True)
        if "early_plateau" in spec.must:
            deferred.append((spec, lab, run))
            continue
        changes = criteria.apply(lab, run)
        if changes:
            relabelled.append(f"{spec.name}: {' '.join(changes)}")
    for spec, lab, run in deferred:
        reference = _healthy_level(spec.data, finals, out)
        changes = criteria.apply(lab, run, reference)
        if changes:
            relabelled.append(f"{spec.name}: {' '.join(changes)}")
    print(f"relabelled by the criteria (+ now must, ~ gray: may, - fault did not show: may): "
          f"{len(relabelled)}")
    for line in relabelled:
        print(f"  {line}")
    if not args.dry:
        known = {s.name for s in all_specs()}
        labels = {k: v for k, v in labels.items() if k in known}
        for path in out.glob("*.npz"):
            if path.stem not in known:
                path.unlink()
        labels_path.write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
    print(f"{len(specs)} runs in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
