"""The SDK while the server is down for an hour: log() cost and memory growth.

    .venv/bin/python bench/bench_sdk_outage.py [--points 3600000] [--speedup 50]

An hour at 1,000 points/s (20-key dicts, 50 calls a second) is replayed ``--speedup`` times
faster against a port where nothing listens. Prints log() median/p99/max, resident memory
growth, points spooled and dropped. Goals (issue 6): log() never raises, p99 < 1 ms, growth
under 64 MiB, nothing dropped.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KEYS = [f"k{i:02d}" for i in range(20)]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=3_600_000)
    ap.add_argument("--speedup", type=float, default=50)
    args = ap.parse_args()
    import logging

    import client_sdk

    logging.getLogger("client_sdk").setLevel(logging.ERROR)
    calls = args.points // len(KEYS)
    period = 1.0 / (50 * args.speedup)  # 50 calls/s in real time
    with tempfile.TemporaryDirectory() as tmp:
        run = client_sdk.Run(project="outage", url=f"http://127.0.0.1:{closed_port()}",
                             spool_dir=tmp)
        base = rss_mib()
        peak = base
        costs = []
        t_next = time.perf_counter()
        for step in range(calls):
            d = {k: step * 1e-3 + i for i, k in enumerate(KEYS)}
            t0 = time.perf_counter()
            run.log(d, step=step)
            costs.append(time.perf_counter() - t0)
            if step % 5000 == 0:
                peak = max(peak, rss_mib())
            t_next += period
            delay = t_next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        run.flush(timeout=30)
        peak = max(peak, rss_mib())
        spooled = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(tmp)
                      for f in fs)
        costs.sort()
        print(f"server down; {args.points:,} points ({calls:,} log() calls of {len(KEYS)} keys), "
              f"an hour at 1,000 points/s replayed {args.speedup:g}x faster")
        print(f"log(): median {statistics.median(costs) * 1e6:.1f} us, "
              f"p99 {costs[int(0.99 * len(costs))] * 1e6:.1f} us, max {costs[-1] * 1e3:.2f} ms")
        print(f"resident memory: {base:.0f} MiB before, peak {peak:.0f} MiB: "
              f"growth {peak - base:.1f} MiB (goal < 64)")
        print(f"spooled on disk: {spooled / 2**20:.1f} MiB; dropped: {run.dropped}")
        run.finish(timeout=2)


if __name__ == "__main__":
    main()
