"""How long one ``client_sdk.log()`` call takes, for a 20-key dict.

Prints the median and p99 (microseconds per call, each call timed with perf_counter_ns)
next to the floor of what any queueing logger must do: copy the dict into a
``collections.deque``. The sender thread runs meanwhile, in two set-ups:

- offline: it encodes, gzips and spools every batch (the most work it ever does);
- unreachable: online against a port with nothing listening (spooling + failed connects).

And two loops: ``tight`` (log() back to back: the sender competes for the GIL all the time and
the queue may fill up, then points are dropped, counted and shown) and ``paced`` (about 20 us
of pure-Python "training" between calls, a realistic upper rate of 50k calls/s).

Usage: .venv/bin/python bench/bench_log.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import client_sdk  # noqa: E402

KEYS = [f"metric/{i:02d}" for i in range(20)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spin(us: float) -> None:
    end = time.perf_counter_ns() + us * 1000
    while time.perf_counter_ns() < end:
        pass


def _timed(fn, calls: int, pace_us: float) -> list:
    perf = time.perf_counter_ns
    out = [0] * calls
    data = {k: 0.5 for k in KEYS}
    for i in range(calls):
        data["metric/00"] = float(i)
        t0 = perf()
        fn(data)
        out[i] = perf() - t0
        if pace_us:
            _spin(pace_us)
    return out


def _stats(ns: list) -> tuple:
    ns = sorted(ns)
    return statistics.median(ns) / 1000, ns[int(len(ns) * 0.99)] / 1000


def floor(calls: int, pace_us: float) -> tuple:
    q: collections.deque = collections.deque(maxlen=1_000_000)
    return _stats(_timed(lambda d: q.append(d.copy()), calls, pace_us))


def sdk(mode: str, calls: int, pace_us: float) -> tuple:
    """The module function, as a training script calls it (auto-incremented steps)."""
    spool = tempfile.mkdtemp(prefix="losslens-bench-")
    url = f"http://127.0.0.1:{_free_port()}"
    run = client_sdk.init(project="bench", mode=mode, url=url, spool_dir=spool)
    stats = _stats(_timed(client_sdk.log, calls, pace_us))
    dropped = run.dropped
    client_sdk.finish(timeout=5)
    shutil.rmtree(spool, ignore_errors=True)
    return stats + (dropped,)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200_000)
    args = ap.parse_args()
    print(f"log() of a 20-key dict, {args.calls} calls, Python {sys.version.split()[0]}")
    print(f"{'set-up':44} {'median us':>10} {'p99 us':>8} {'dropped pts':>12}")
    for loop, pace in (("tight", 0.0), ("paced 20us", 20.0)):
        calls = args.calls if not pace else args.calls // 4
        med, p99 = floor(calls, pace)
        print(f"{'floor: deque.append(d.copy()) ' + loop:44} {med:10.2f} {p99:8.2f} {'-':>12}")
        for mode in ("offline", "online"):
            label = f"client_sdk.log() {mode if mode == 'offline' else 'unreachable'} {loop}"
            med, p99, dropped = sdk(mode, calls, pace)
            print(f"{label:44} {med:10.2f} {p99:8.2f} {dropped:12d}")


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    main()
