"""Load: 100 concurrent runs, 20 keys every 100 ms each, through the SDK, against the
compose-like topology (PostgreSQL, Redis, ``losslens serve --workers 2``, a Celery worker).

    .venv/bin/python bench/bench_load.py [--runs 100] [--seconds 60] [--faulty 10]

Prints ingest request latency (p50/p99, as the SDK sees it), points per second, the delay from
a fault's onset in the data (a NaN loss, in ``--faulty`` runs, half-way) to its diagnosis on
the API (p50/p99), and the count of lost points (must be 0).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._servers import free_port, fresh_database, running_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["loss"] + [f"metric_{i:02d}" for i in range(19)]


class TimedTransport:
    """The SDK's HTTP transport, timing each points request."""

    def __init__(self, url: str, latencies: list, server_times: list):
        from client_sdk import HTTPTransport

        self.inner = HTTPTransport(url)
        self.latencies = latencies
        self.server_times = server_times

    def request(self, method, path, body, headers, timeout):
        t0 = time.perf_counter()
        resp = self.inner.request(method, path, body, headers, timeout)
        if path.endswith("/points"):
            self.latencies.append(time.perf_counter() - t0)
            timing = {k.lower(): v for k, v in resp.headers.items()}.get("server-timing", "")
            if "dur=" in timing:
                self.server_times.append(float(timing.split("dur=")[1]) / 1e3)
        return resp

    def close(self):
        self.inner.close()


def _trainer(url, n_runs, faulty, seconds, spool, start, out):
    import threading

    import client_sdk

    latencies: list = []
    server_times: list = []
    runs = [
        client_sdk.Run(
            project="load",
            name=f"r{i}",
            url=url,
            spool_dir=spool,
            transport=TimedTransport(url, latencies, server_times),
        )
        for i in range(n_runs)
    ]
    start.wait()
    t0 = time.time()
    onsets = {}

    def loop(i, run):
        step = 0
        while time.time() - t0 < seconds:
            bad = i < faulty and time.time() - t0 > seconds / 2
            if bad and run.id not in onsets:
                onsets[run.id] = time.time()
            run.log(
                {k: (float("nan") if bad and k == "loss" else 1.0 / (1 + step)) for k in KEYS},
                step=step,
            )
            step += 1
            time.sleep(0.1)
        run.finish(timeout=120)
        counts[run.id] = step * len(KEYS)

    counts: dict = {}
    threads = [threading.Thread(target=loop, args=(i, r)) for i, r in enumerate(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, onsets, counts, server_times))


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _measure(url: str, args, tmp: Path) -> None:
    """Train the runs against ``url``, watch for diagnoses, print the figures."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    per = args.runs // args.procs
    faulty_left = args.faulty
    workers = []
    for _ in range(args.procs):
        f = min(per, faulty_left)
        faulty_left -= f
        workers.append(
            ctx.Process(
                target=_trainer,
                args=(url, per, f, args.seconds, str(tmp / "spool"), start, out),
            )
        )
    for w in workers:
        w.start()
    time.sleep(3)
    start.set()
    t0 = time.time()
    # Watch for diagnoses while they train.
    detected: dict = {}
    deadline = t0 + args.seconds + 60
    results = []
    while len(results) < len(workers) and time.time() < deadline + 120:
        try:
            results.append(out.get(timeout=0.5))
        except Exception:  # noqa: BLE001 - queue.Empty
            pass
        if time.time() - t0 > args.seconds / 2:
            with urllib.request.urlopen(
                f"{url}/api/v1/diagnoses?kind=nan_loss&limit=1000", timeout=10
            ) as r:
                for d in json.load(r)["diagnoses"]:
                    detected.setdefault(d["run_id"], time.time())
    for w in workers:
        w.join()
    latencies = [x for r in results for x in r[0]]
    server_times = [x for r in results for x in r[3]]
    onsets = {k: v for r in results for k, v in r[1].items()}
    counts = {k: v for r in results for k, v in r[2].items()}
    stored = 0
    for run_id in counts:
        with urllib.request.urlopen(f"{url}/api/v1/runs/{run_id}", timeout=10) as r:
            stored += json.load(r)["num_points"]
    delays = [detected[r] - onsets[r] for r in onsets if r in detected]
    total = sum(counts.values())
    print(
        f"{args.runs} runs x {len(KEYS)} keys every 100 ms for {args.seconds:.0f} s; "
        "PostgreSQL, Redis, 2 server processes, 1 Celery worker"
    )
    print(
        f"ingest latency as the SDK sees it: p50 {_pct(latencies, 0.5) * 1e3:.1f} ms, "
        f"p99 {_pct(latencies, 0.99) * 1e3:.1f} ms over {len(latencies)} requests "
        "(includes the training processes' own queueing for their 2 shared cores)"
    )
    print(
        f"ingest time in the server (Server-Timing): "
        f"p50 {_pct(server_times, 0.5) * 1e3:.1f} ms, "
        f"p99 {_pct(server_times, 0.99) * 1e3:.1f} ms"
    )
    print(
        f"points/s: {total / args.seconds:,.0f} logged, all {total:,} stored: lost {total - stored}"
    )
    print(
        f"fault onset -> diagnosis on the API: p50 {_pct(delays, 0.5):.1f} s, "
        f"p99 {_pct(delays, 0.99):.1f} s ({len(delays)}/{len(onsets)} detected)"
    )


def _report_server_errors(log: Path) -> None:
    errors = [
        line for line in log.read_text().splitlines() if "rror" in line and "INFO" not in line
    ]
    print(f"server log: {len(errors)} error lines")
    for line in sorted(set(errors))[:8]:
        print("  " + line[:240])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--faulty", type=int, default=10)
    ap.add_argument("--procs", type=int, default=4, help="training processes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database("postgres", tmp) as db:
        tmp = Path(tmp)
        redis_port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        broker = f"redis://127.0.0.1:{redis_port}/0"
        worker = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker"],
            env={
                **os.environ,
                "LOSSLENS_DATABASE_URL": db,
                "LOSSLENS_BROKER_URL": broker,
                "LOSSLENS_LOG_LEVEL": "warning",
            },
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        log = tmp / "server.log"
        try:
            with running_server(
                db, workers=2, env={"LOSSLENS_BROKER_URL": broker}, log_path=log
            ) as url:
                _measure(url, args, tmp)
        finally:
            worker.terminate()
            worker.wait(30)
            redis.terminate()
            if log.exists():
                _report_server_errors(log)


if __name__ == "__main__":
    main()
