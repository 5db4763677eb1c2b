"""A real server process on a free port, a real headless Chromium, and builders for both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, url: str, db_path: Path, proc: subprocess.Popen):
        self.url, self.db_path, self.proc = url, db_path, proc
        self.api = httpx.Client(base_url=url, timeout=30)

    def new_run(self, project: str, name: str | None = None, **fields) -> str:
        run_id = str(uuid.uuid4())
        body = {"project": project, **fields}
        if name is not None:
            body["name"] = name
        r = self.api.put(f"/api/v1/runs/{run_id}", json=body)
        assert r.status_code == 201, r.text
        return run_id

    def post_points(self, run_id: str, points: dict) -> dict:
        """``points``: {key: (steps, values)}; values may hold "NaN", "Infinity", "-Infinity"."""
        body = {
            "batch_id": uuid.uuid4().hex,
            "points": {k: {"steps": list(s), "values": list(v)} for k, (s, v) in points.items()},
        }
        r = self.api.post(f"/api/v1/runs/{run_id}/points", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def model_checks(self, run_id: str, findings: list[dict]) -> None:
        r = self.api.put(f"/api/v1/runs/{run_id}/model-checks", json={"findings": findings})
        assert r.status_code == 200, r.text

    def set_status(self, run_id: str, status: str) -> None:
        r = self.api.patch(f"/api/v1/runs/{run_id}", json={"status": status})
        assert r.status_code == 200, r.text

    def rule_finding(self, run_id: str, **finding) -> int:
        """A diagnosis with a step range, stored through the storage layer as the worker does.

        Its source is not "rule": the real rules, which run after each ingest, would resolve
        a "rule" finding they do not see themselves. Returns the diagnosis id.
        """
        from server.diagnoses.repository import FindingIn, sync_findings
        from server.storage.engine import make_engine, make_sessionmaker

        engine = make_engine(f"sqlite:///{self.db_path}")
        try:
            with make_sessionmaker(engine).begin() as session:
                sync_findings(session, run_id, "frontend-test", [FindingIn(**finding)])
        finally:
            engine.dispose()
        found = self.api.get(f"/api/v1/runs/{run_id}/diagnoses").json()["diagnoses"]
        return next(d["id"] for d in found if d["kind"] == finding["kind"])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("frontend") / "losslens.db"
    port = free_port()
    env = {**os.environ, "LOSSLENS_LOG_LEVEL": "warning"}
    log_path = db_path.with_name("server.log")
    log = open(log_path, "wb")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{db_path}",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log.close()
            pytest.fail(f"the server did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    server = LiveServer(url, db_path, proc)
    yield server
    server.api.close()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh page (own storage). It records console errors, page errors, dialogs and every
    request; after the test, none of the first three may have happened and no request may
    have left our server (air-gapped clusters)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.console_errors, pg.dialogs, pg.requests = [], [], []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(f"page error: {e}"))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    assert pg.console_errors == [], pg.console_errors
    assert pg.dialogs == [], pg.dialogs
    outside = [u for u in pg.requests if not u.startswith(live_server.url)]
    assert outside == [], outside


def open_page(pg, live_server, route: str, ready: str | None = None) -> None:
    pg.goto(f"{live_server.url}/#{route}")
    if ready:
        pg.wait_for_function(ready)


def screenshot(pg, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pg.evaluate("window.scrollTo(0, 0)")  # sticky bars stay at the top of a full-page shot
    pg.wait_for_timeout(100)
    pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def show_chart(pg, chart: str) -> None:
    """Scroll a chart into view (charts fetch when near the viewport) and wait until drawn."""
    sel = f'[data-chart="{chart}"]'
    pg.locator(sel).scroll_into_view_if_needed()
    pg.wait_for_function(
        "(sel) => { const c = document.querySelector(sel);"
        " return !c.classList.contains('loading') && Number(c.querySelector('.plot')"
        ".dataset.renders || 0) > 0; }",
        arg=sel,
    )


def chart_data(pg, chart: str) -> list[dict]:
    """The traces of a chart (its Plotly graph div's ``data``), JSON-safe."""
    show_chart(pg, chart)
    return pg.evaluate(
        """(id) => {
            const gd = document.querySelector(`[data-chart="${id}"] .plot`);
            return (gd.data || []).map((t) => ({
                name: t.name, type: t.type, uid: t.uid,
                x: t.x ? Array.from(t.x) : [], y: t.y ? Array.from(t.y) : [],
                z: t.z || null, customdata: t.customdata || null,
            }));
        }""",
        chart,
    )


def chart_layout(pg, chart: str) -> dict:
    return pg.evaluate(
        """(id) => {
            const l = document.querySelector(`[data-chart="${id}"] .plot`).layout;
            return {shapes: l.shapes || [], xrange: l.xaxis.range, xauto: l.xaxis.autorange,
                    ytype: l.yaxis.type};
        }""",
        chart,
    )


def renders(pg, chart: str) -> int:
    return pg.evaluate(
        '(id) => Number(document.querySelector(`[data-chart="${id}"] .plot`).dataset.renders || 0)',
        chart,
    )


def new_project() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"
