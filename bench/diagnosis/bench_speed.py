"""How long `diagnose()` takes on a long run: loss of 1,000,000 points + val/loss + lr.

    .venv/bin/python bench/diagnosis/bench_speed.py [--points 1000000] [--repeat 5]

Prints the median wall time of a cold call (fresh SeriesData: no cached buckets) and of a
call with layer signals added (20 keys at every 10th step), and the time per rule.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from worker.diagnosis import RULES, RunData, SeriesData, diagnose


def make_run(n: int, layers: bool) -> RunData:
    rng = np.random.default_rng(0)
    t = np.arange(n)
    loss = (2.2 * np.exp(-t / (0.08 * n)) + 0.1) * np.exp(0.25 * rng.standard_normal(n))
    te = np.arange(0, n, max(1, n // 1000))
    pts = {"loss": (t, loss), "val/loss": (te, 2.2 * np.exp(-te / (0.08 * n)) + 0.2),
           "lr": (t, 1e-3 * 0.5 * (1 + np.cos(np.pi * t / n)))}
    if layers:
        tl = t[::10]
        for m in ("fc1", "fc2", "fc3", "out"):
            for key in ("grad_norm", "weight_norm", "update_ratio"):
                pts[f"{key}/{m}"] = (tl, np.exp(0.2 * rng.standard_normal(tl.size)))
        for key in ("grad_norm", "input/mean", "input/std", "act_zero_frac/a1",
                    "act_sat_frac/a2"):
            pts[key] = (tl, rng.random(tl.size))
    return RunData({k: SeriesData(s, v) for k, (s, v) in pts.items()},
                   {"n_classes": 10, "lr": 1e-3, "batch_size": 32}, n)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    for layers in (False, True):
        runs = [make_run(args.points, layers) for _ in range(args.repeat)]
        it = iter(runs)
        cold = timed(lambda it=it: diagnose(next(it)), args.repeat)
        what = "loss + val/loss + lr" + (" + 20 layer keys (every 10th step)" if layers else "")
        print(f"diagnose(), {args.points:,} points of {what}: {cold * 1000:.0f} ms")
    run = make_run(args.points, True)
    diagnose(run)  # warm the bucket caches, then time each rule alone
    per_rule = {k: timed(lambda r=r: r(run), args.repeat) for k, r in RULES.items()}
    for kind, t in sorted(per_rule.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  slowest rules (warm caches): {kind:22s} {t * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
