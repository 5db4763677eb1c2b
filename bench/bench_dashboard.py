"""How fast the dashboard is, measured in headless Chromium against a real server.

Data: one run with 10 keys of 1,000,000 points each (written through the server's storage
layer, ``server.metrics.service.ingest``, in batches of 10k points per key: chunks of the size
compaction makes), and a project of 1,000 runs.

Figures (medians over --repeat tries; goals from the task in brackets):

- run page interactive [<= 1.5 s]: from navigation start to the charts in view drawn with their
  data (each one's first ``Plotly.react`` resolved; the page then sets ``data-run-ready``).
  Charts further down fetch when scrolled near, so "all charts" is also measured, in a viewport
  tall enough to show them all. "cold" is a new browser context (Plotly's 4.8 MB fetched,
  compiled and run for the first time), "warm" a later visit (HTTP and V8 code caches).
- zoom re-fetch [<= 300 ms]: from ``Plotly.relayout`` of a 1% x range on the loss chart to every
  chart in view re-drawn with that range fetched again (the loss chart alone is also given).
- runs page, 1,000 runs [<= 1 s]: from navigation start to the newest 200 rows shown, and to
  all 1,000 rows in the table (the page asks the server for the loss and val/loss summaries
  only: ``summary_keys``).
- runs page sort: from a click on the Name column (sorted by the server over every matching
  run) to the 1,000 rows shown in that order.

The dashboard asks for ``max_points`` = 2 x the chart's plot width in pixels; the values seen in
the requests are printed.

Usage: .venv/bin/python bench/bench_dashboard.py [--points 1000000] [--runs 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._servers import running_server  # noqa: E402
from server.metrics.body import Batch  # noqa: E402
from server.metrics.points import Points  # noqa: E402
from server.metrics.service import ingest  # noqa: E402
from server.runs.schemas import (
    RunPatch,  # noqa: E402
    RunUpsert,  # noqa: E402
)
from server.runs.service import patch_run, upsert_run  # noqa: E402
from server.storage.engine import make_engine, make_sessionmaker  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402

KEYS = [
    "loss",
    "val/loss",
    "lr",
    "grad_norm",
    "train/acc",
    "val/acc",
    "sys/step_time",
    "sys/gpu_util",
    "grad_norm/layers.0",
    "grad_norm/layers.1",
]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BATCH = 10_000  # points per key per ingest: one 10k-point chunk, the compaction target


def key_values(key: str, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(steps)
    decay = np.exp(-steps / (n / 5))
    noise = rng.normal(0, 0.05, n)
    if key in ("loss", "val/loss"):
        v = 2.3 * decay + 0.1 + noise
        if key == "loss":
            v[n // 2] = 40.0  # a one-step spike the downsampling must keep
            v[int(n * 0.7)] = np.nan
        return v
    if key == "lr":
        return 3e-4 * 0.5 * (1 + np.cos(np.pi * steps / n))
    if key.endswith("acc"):
        return 1 - decay * 0.9 + noise / 5
    if key.startswith("grad_norm"):
        return np.abs(1.5 * decay + noise) + 1e-3
    return 0.05 + np.abs(noise)


def seed(url: str, n_points: int, n_runs: int) -> tuple[str, str]:
    upgrade(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    rng = np.random.default_rng(0)
    big = str(uuid.uuid4())
    t0 = time.perf_counter()
    with maker.begin() as session:
        upsert_run(
            session,
            big,
            RunUpsert(
                project="bench-big", name="ten-keys-1M", config={"lr": 3e-4, "batch_size": 256}
            ),
        )
    steps_all = np.arange(n_points, dtype=np.int64)
    values = {k: key_values(k, steps_all, rng) for k in KEYS}
    walls = 1.7e9 + steps_all * 0.01
    for lo in range(0, n_points, BATCH):
        sl = slice(lo, min(lo + BATCH, n_points))
        batch = Batch(
            uuid.uuid4().hex, {k: Points(steps_all[sl], values[k][sl], walls[sl]) for k in KEYS}
        )
        with maker.begin() as session:
            from server.storage.models import Run

            ingest(session, session.get(Run, big), batch)
    with maker.begin() as session:
        from server.storage.models import Run

        patch_run(session, session.get(Run, big), RunPatch(status="finished"))
    print(f"seeded {len(KEYS)} keys x {n_points:,} points in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    small = np.arange(50, dtype=np.int64)
    with maker.begin() as session:
        from server.storage.models import Run

        for i in range(n_runs):
            rid = str(uuid.uuid4())
            run, _ = upsert_run(
                session,
                rid,
                RunUpsert(
                    project="bench-many",
                    name=f"sweep-{i:04d}",
                    tags=["sweep", f"lr{i % 5}"],
                    config={"lr": 10 ** -(i % 5)},
                    status="finished" if i % 7 else "running",
                ),
            )
            loss = 2.0 * np.exp(-small / (10 + i % 30)) + 0.1
            ingest(
                session,
                run,
                Batch(
                    uuid.uuid4().hex,
                    {
                        "loss": Points(small, loss, 1.7e9 + small * 1.0),
                        "val/loss": Points(
                            small[::10], loss[::10] + 0.05, 1.7e9 + small[::10] * 1.0
                        ),
                    },
                ),
            )
    print(f"seeded {n_runs:,} runs in {time.perf_counter() - t0:.1f} s")
    engine.dispose()
    return big, "bench-many"


def run_page_ready(page, base: str, run_id: str) -> float:
    """Milliseconds from navigation start to the charts in view drawn (a fresh document)."""
    page.goto("about:blank")
    page.goto(f"{base}/#/run/{run_id}")
    page.wait_for_function(f"document.body.dataset.runReady === '{run_id}'", timeout=60_000)
    return page.evaluate("window.__losslens.runReadyAt")


def runs_page_ready(page, base: str, project: str, n: int) -> tuple[float, float]:
    """(first rows shown, all n rows in the table), ms from navigation start."""
    page.goto("about:blank")
    page.goto(f"{base}/#/runs?project={project}")
    page.wait_for_function(
        f"document.querySelectorAll('#runs-table tbody tr').length === {n}", timeout=60_000
    )
    got = page.evaluate("window.__losslens")
    return got.get("runsFirstAt", got["runsReadyAt"]), got["runsReadyAt"]


# A click on a column the server sorts, to every row shown in the new order.
SORT_JS = """async (n) => {
  document.body.dataset.runsReady = '';
  const t0 = performance.now();
  document.querySelector('th[data-col="name"] button').click();
  return await new Promise((resolve) => {
    const check = () => {
      const rows = document.querySelectorAll('#runs-table tbody tr');
      if (document.body.dataset.runsReady && rows.length === n) resolve(performance.now() - t0);
      else requestAnimationFrame(check);
    };
    check();
  });
}"""


def runs_sort(page, base: str, project: str, n: int) -> float:
    runs_page_ready(page, base, project, n)
    took = page.evaluate(SORT_JS, n)
    first = page.inner_text("#runs-table tbody tr .run-link")
    assert first == "sweep-0000", first  # sorted by name, ascending
    return took


# Charts out of view do not fetch (they catch up when scrolled to): wait for those in view.
ZOOM_JS = """async ([lo, hi]) => {
  const plots = Array.from(document.querySelectorAll('[data-chart] .plot')).filter((p) => {
    const r = p.getBoundingClientRect();
    return r.bottom > 0 && r.top < innerHeight;
  });
  const main = document.querySelector('[data-chart="main"] .plot');
  const before = plots.map((p) => Number(p.dataset.renders || 0));
  const t0 = performance.now();
  let mainAt = null;
  const drawn = (p, i) => Number(p.dataset.renders || 0) > before[i];
  const done = new Promise((resolve) => {
    const check = () => {
      if (mainAt === null && drawn(main, plots.indexOf(main))) mainAt = performance.now();
      if (plots.every(drawn)) resolve(performance.now());
      else requestAnimationFrame(check);
    };
    check();
  });
  Plotly.relayout(main, {'xaxis.range[0]': lo, 'xaxis.range[1]': hi});
  const end = await done;
  const raw = main.data.find((t) => t.name === 'loss');
  const inRange = Array.from(raw.x).filter((x) => x >= lo && x <= hi).length;
  return {all: end - t0, main: mainAt - t0, inRange};
}"""


RESET_JS = """Plotly.relayout(document.querySelector('[data-chart="main"] .plot'),
                               {'xaxis.autorange': true})"""


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench-dashboard.db"
        big, many = seed(url, args.points, args.runs)
        with running_server(url) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            series_urls: list[str] = []

            cold = []
            for _ in range(args.repeat):
                ctx = browser.new_context(viewport={"width": 1400, "height": 900})
                page = ctx.new_page()
                page.on("request", lambda r: "/series?" in r.url and series_urls.append(r.url))
                cold.append(run_page_ready(page, base, big))
                ctx.close()

            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            run_page_ready(page, base, big)  # fills the HTTP and code caches
            warm = [run_page_ready(page, base, big) for _ in range(args.repeat)]
            page.set_viewport_size({"width": 1400, "height": 3200})  # every chart in view
            tall = [run_page_ready(page, base, big) for _ in range(args.repeat)]
            n_charts = page.evaluate("document.querySelectorAll('[data-chart]').length")
            page.set_viewport_size({"width": 1400, "height": 900})
            run_page_ready(page, base, big)

            zooms = []
            n = args.points
            for i in range(args.repeat):
                lo = int(n * (0.1 + 0.15 * i))
                zooms.append(page.evaluate(ZOOM_JS, [lo, lo + n // 100]))
                page.evaluate(RESET_JS)
                page.wait_for_timeout(500)

            n_rows = min(args.runs, 1000)
            runs = [runs_page_ready(page, base, many, n_rows) for _ in range(args.repeat)]
            sorts = [runs_sort(page, base, many, n_rows) for _ in range(args.repeat)]
            ctx.close()
            browser.close()

    mp = sorted({int(m) for u in series_urls for m in re.findall(r"max_points=(\d+)", u)})
    med = statistics.median

    def row(label: str, xs: list[float], goal: str = "") -> None:
        figure = f"median {med(xs):6.0f} ms  (min {min(xs):5.0f}, max {max(xs):5.0f})"
        print(f"  {label:<58} {figure}{'   goal ' + goal if goal else ''}")

    print(f"\nrun page: {len(KEYS)} keys x {args.points:,} points, {n_charts} charts")
    row("interactive (charts in view drawn), cold: new context", cold, "<= 1500 ms")
    row("interactive, warm: later visit (Plotly in HTTP/code cache)", warm)
    row(f"all {n_charts} charts drawn (3200 px tall viewport), warm", tall)
    row(
        "zoom re-fetch of a 1% range, every chart in view re-drawn",
        [z["all"] for z in zooms],
        "<= 300 ms",
    )
    row("zoom re-fetch, the loss chart alone", [z["main"] for z in zooms])
    print(
        f"  max_points asked: {mp}; loss points drawn in the zoomed 1%:"
        f" {zooms[0]['inRange']} of {n // 100 + 1} stored"
    )
    print(f"runs page, {args.runs:,} runs")
    row("first 200 rows shown", [r[0] for r in runs])
    row(f"all {n_rows:,} rows in the table", [r[1] for r in runs], "<= 1000 ms")
    row(f"sort by name on the server, click to {n_rows:,} rows re-ordered", sorts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
