"""One key of 1,000,000 points: fetch time through the API (downsampled to 2,000 and in full),
and bytes per point on disk after compaction, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_series.py [--points 1000000] [--backends sqlite,postgres]

Goals (issue 2): downsampled fetch <= 60 ms server time; <= 20 bytes a point after compaction.
Reference: MLflow serves a 100k-point history in 7.5 s (0.5 s downsampled to 320 points).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid

import numpy as np
from sqlalchemy import text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._servers import fresh_database, running_server  # noqa: E402
from server.metrics import service  # noqa: E402
from server.metrics.body import Batch  # noqa: E402
from server.metrics.points import Points  # noqa: E402
from server.runs.schemas import RunUpsert  # noqa: E402
from server.runs.service import upsert_run  # noqa: E402
from server.storage.engine import make_engine, make_sessionmaker  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from server.storage.models import Run  # noqa: E402


def load(url: str, n: int, batch_size: int) -> str:
    """A run with one noisy loss curve of ``n`` points, written in batches, then compacted."""
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    run_id = str(uuid.uuid4())
    with maker.begin() as s:
        upsert_run(s, run_id, RunUpsert(project="bench"))
    rng = np.random.default_rng(0)
    steps = np.arange(n, dtype=np.int64)
    values = 2.0 * np.exp(-steps / (n / 4)) + 0.05 * rng.standard_normal(n)
    walls = 1.7e9 + steps * 0.01
    for lo in range(0, n, batch_size):
        sl = slice(lo, lo + batch_size)
        with maker.begin() as s:
            batch = Batch(uuid.uuid4().hex, {"loss": Points(steps[sl], values[sl], walls[sl])})
            service.ingest(s, s.get_one(Run, run_id), batch)
    with maker.begin() as s:
        service.compact_run(s, run_id, 10_000)
    engine.dispose()
    return run_id


def bytes_on_disk(url: str, n: int) -> float:
    """The whole database file (SQLite) or the chunks table with its indexes and TOAST (PG)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.close()
        return os.path.getsize(path) / n
    engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM FULL chunks"))
        size = conn.execute(text("SELECT pg_total_relation_size('chunks')")).scalar()
    engine.dispose()
    return size / n


def fetch_ms(base: str, run_id: str, query: str, repeat: int) -> tuple[float, int]:
    url = f"{base}/api/v1/runs/{run_id}/series?keys=loss{query}"
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as r:
            size = len(r.read())
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1_000, help="points per ingest batch")
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    print(f"one key of {args.points:,} points, ingested in batches of {args.batch:,}, compacted")
    print(f"{'backend':10} {'downsampled 2000':>18} {'full':>10} {'reply':>10} {'bytes/pt':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            with fresh_database(backend, tmp) as url:
                upgrade(url)
                run_id = load(url, args.points, args.batch)
                per_point = bytes_on_disk(url, args.points)
                with running_server(url) as base:
                    fetch_ms(base, run_id, "&max_points=2000", 3)  # warm up
                    ds, _ = fetch_ms(base, run_id, "&max_points=2000", 15)
                    full, size = fetch_ms(base, run_id, "", 3)
                print(
                    f"{backend:10} {ds:15.1f} ms {full:7.0f} ms {size / 1e6:7.1f} MB "
                    f"{per_point:9.1f}"
                )
    print(
        "goal: downsampled <= 60 ms; <= 20 bytes/point "
        "(MLflow: 500 ms for a 320-point view of 100k points, ~270 B/pt)"
    )


if __name__ == "__main__":
    main()
