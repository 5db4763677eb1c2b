"""End-to-end ingest: training processes log through the SDK, over HTTP, into the database.

    .venv/bin/python bench/bench_ingest.py [--points N] [--runs 1,8] [--backends sqlite,postgres]

Each run is its own process that logs ``--points`` points (20 keys a step) as fast as it can
and calls ``finish()``, which returns once the server has every point. Points per second is all
points over the wall time from the first ``log()`` to the last ``finish()``; the count stored
is checked against what was logged. Client and server share this machine's 2 cores.

Goal (issue 2): >= 250,000 points/s into PostgreSQL. MLflow ingests ~4,000 points/s with
1,000-metric log_batch requests on this machine; FastTrackML ~13,000.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._servers import fresh_database, running_server  # noqa: E402

KEYS = [f"metric_{i:02d}" for i in range(19)] + ["loss"]


def _train(url: str, steps: int, spool: str, start, out) -> None:
    import client_sdk

    run = client_sdk.Run(project="bench", url=url, spool_dir=spool)
    start.wait()
    t0 = time.perf_counter()
    for step in range(steps):
        run.log({k: step * 0.001 + i for i, k in enumerate(KEYS)}, step=step)
    t_logged = time.perf_counter()
    run.finish(timeout=600)
    out.put((run.id, t0, t_logged, time.perf_counter()))


def bench(url: str, n_runs: int, points: int, spool: str) -> tuple[float, float, bool]:
    steps = points // len(KEYS)
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_train, args=(url, steps, spool, start, out)) for _ in range(n_runs)
    ]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every process import and register its run
    start.set()
    results = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    t0 = min(r[1] for r in results)
    t_end = max(r[3] for r in results)
    exact = True
    for run_id, *_ in results:
        with urllib.request.urlopen(f"{url}/api/v1/runs/{run_id}", timeout=30) as r:
            exact &= json.load(r)["num_points"] == steps * len(KEYS)
    log_cost = max(r[2] - r[1] for r in results)
    return n_runs * steps * len(KEYS) / (t_end - t0), log_cost, exact


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=400_000, help="points per run")
    ap.add_argument("--runs", default="1,8")
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    print(f"{args.points:,} points per run, {len(KEYS)} keys a step, SDK -> HTTP -> server -> DB")
    print(f"{'backend':10} {'runs':>4} {'points/s':>12} {'log() loop':>11} {'exact':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            for n_runs in (int(x) for x in args.runs.split(",")):
                with fresh_database(backend, tmp) as db, running_server(db) as url:
                    rate, log_s, exact = bench(url, n_runs, args.points, f"{tmp}/spool")
                print(f"{backend:10} {n_runs:4d} {rate:12,.0f} {log_s:9.2f} s {str(exact):>6}")
    print("goal: >= 250,000 points/s into PostgreSQL (MLflow ~4,000; FastTrackML ~13,000)")


if __name__ == "__main__":
    main()
