"""Score the diagnosis rules on the labelled benchmark traces.

    .venv/bin/python bench/diagnosis/score.py [--verbose] [--no-hint] [--step 0.05]
        [--split tuning|held-out|all] [--traces DIR] [--kinds a,b] [--jobs N]

Two tables by default: the TUNING draws (traces/d0, d200, d400: the thresholds were chosen
on them, an in-sample figure) and the HELD-OUT draws (traces/d600, d800: never tuned on,
the figure that counts); see tracefile.DRAWS. `--kinds` runs only those rules (faster
while tuning one; the healthy-clean line then covers only them).

Every trace is replayed as it grew: the rules run on prefixes of the run (every 5% of its
steps by default). A kind counts as detected on a run if any prefix reports it (any
severity); its detection step is the end of the first such prefix. Precision and recall
per kind use labels.json: `must` kinds are positives (`pos`); on runs where a kind is
neither must nor may (`neg`: the healthy runs and unrelated faults) any detection is a
false positive; `may` kinds are ignored on that run. Delay: detection step minus the
labelled onset (runs with a known onset only), in steps and as a share of the run. A
healthy run is clean when no prefix reports a warning or a critical finding (of a kind
that is not `may` on it: a gray-zone label of criteria.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tracefile  # noqa: E402

from worker.diagnosis import RULES, RunData, diagnose  # noqa: E402


def replay(run: RunData, frac_step: float, rules=None) -> tuple[dict[str, int], set[str], int, int]:
    """First detection step per kind over growing prefixes, and the kinds >= warning."""
    first_step = min(int(s.steps[0]) for s in run.series.values() if len(s))
    last_step = run.last_step
    first: dict[str, int] = {}
    loud: set[str] = set()
    for frac in np.arange(frac_step, 1.0 + 1e-9, frac_step):
        cut = int(round(first_step + frac * (last_step - first_step)))
        for f in diagnose(run.until(cut), rules=rules):
            first.setdefault(f.kind, cut)
            if f.severity != "info":
                loud.add(f.kind)
    return first, loud, first_step, last_step


def _replay_one(job: tuple[Path, str, bool, float, tuple[str, ...]]):
    folder, name, no_hint, step, kinds = job
    run = tracefile.load_run(name, folder)
    if no_hint:
        config = {k: v for k, v in run.config.items() if k != "total_steps"}
        run = RunData(run.series, config, None)
    return replay(run, step, {k: RULES[k] for k in kinds})


def score(folders: list[Path], args: argparse.Namespace) -> None:
    """Replay every run of `folders` and print one table over all of them."""
    t0 = time.perf_counter()
    kinds = tuple(args.kinds) if args.kinds else tuple(RULES)
    jobs = [(folder, name, args.no_hint, args.step, kinds)
            for folder in folders for name in sorted(tracefile.labels(folder))]
    with ProcessPoolExecutor(args.jobs) as pool:
        replays = iter(pool.map(_replay_one, jobs, chunksize=4))
    tp, fp, fn = defaultdict(list), defaultdict(list), defaultdict(list)
    negatives = defaultdict(int)  # runs on which the kind is neither a must nor a may
    delays, fdelays = defaultdict(list), defaultdict(list)
    healthy, clean, noisy, n_runs = 0, 0, [], 0
    for folder in folders:
        tag = folder.name
        for name, lab in sorted(tracefile.labels(folder).items()):
            n_runs += 1
            first, loud, s0, s1 = next(replays)
            must, may = set(lab["must"]), set(lab["may"])
            where = f"{tag}/{name}"
            for kind in kinds:
                if kind in must:
                    (tp if kind in first else fn)[kind].append(where)
                    if kind in first and lab["onset"] is not None:
                        delays[kind].append(first[kind] - lab["onset"])
                        fdelays[kind].append((first[kind] - lab["onset"]) / max(1, s1 - s0))
                elif kind not in may:
                    negatives[kind] += 1
                    if kind in first:
                        fp[kind].append(where)
            if lab["healthy"]:
                healthy += 1
                loud -= may  # a gray-zone kind (see criteria.py) is not counted either way
                clean += not loud
                if loud:
                    noisy.append(f"{where}: {', '.join(sorted(loud))}")
    print(f"{n_runs} runs ({healthy} healthy) in {', '.join(f.name for f in folders)}, "
          f"prefixes every {args.step:.0%}, "
          f"total_steps hint {'hidden' if args.no_hint else 'given'}, "
          f"{time.perf_counter() - t0:.1f}s\n")
    print(f"{'kind':24s} {'pos':>4s} {'neg':>4s} {'TP':>4s} {'FP':>4s} {'FN':>4s} {'prec':>6s} "
          f"{'recall':>6s} {'delay':>7s} {'delay%':>7s}")
    for kind in kinds:
        a, b, c = len(tp[kind]), len(fp[kind]), len(fn[kind])
        prec = f"{a / (a + b):.2f}" if a + b else "-"
        rec = f"{a / (a + c):.2f}" if a + c else "-"
        d = f"{np.median(delays[kind]):.0f}" if delays[kind] else "-"
        df = f"{np.median(fdelays[kind]):.0%}" if fdelays[kind] else "-"
        print(f"{kind:24s} {a + c:4d} {negatives[kind]:4d} {a:4d} {b:4d} {c:4d} {prec:>6s} "
              f"{rec:>6s} {d:>7s} {df:>7s}")
    print(f"\nhealthy runs with no warning/critical finding: {clean}/{healthy} "
          f"({clean / max(1, healthy):.0%})")
    if args.verbose:
        for kind in kinds:
            for name in fn[kind]:
                print(f"  miss  {kind:22s} {name}")
            for name in fp[kind]:
                print(f"  false {kind:22s} {name}")
        for line in noisy:
            print(f"  noisy healthy {line}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--verbose", action="store_true", help="list misses and false alarms")
    p.add_argument("--no-hint", action="store_true", help="hide total_steps from the rules")
    p.add_argument("--step", type=float, default=0.05, help="prefix step, as a run fraction")
    p.add_argument("--split", choices=(*tracefile.SPLITS, "all"), default="all",
                   help="score the tuning draws, the held-out draws, or both (two tables)")
    p.add_argument("--traces", type=Path, default=None,
                   help="score one folder of traces (with its labels.json) instead")
    p.add_argument("--kinds", type=lambda s: [k for k in s.split(",") if k], default=None,
                   help="comma-separated kinds: run only these rules")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="processes replaying runs in parallel")
    args = p.parse_args(argv)
    unknown = set(args.kinds or ()) - set(RULES)
    if unknown:
        p.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    if args.traces is not None:
        score([args.traces], args)
        return
    splits = tracefile.SPLITS if args.split == "all" else (args.split,)
    for i, split in enumerate(splits):
        folders = [folder for _, folder in tracefile.draws(split)]
        if not folders:
            continue
        if i:
            print()
        note = ("the thresholds were tuned on these draws: in-sample"
                if split == "tuning" else "never tuned on: THE TABLE THAT COUNTS")
        print(f"=== {split.upper()} ({note}) ===")
        score(folders, args)


if __name__ == "__main__":
    main()
