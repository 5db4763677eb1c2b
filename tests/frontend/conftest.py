"""A real server process on a free port, a real headless Chromium, and builders for both."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.procs import create_key, free_port, server_up, spawn_cli, wait_for

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class LiveServer:
    def __init__(self, url: str, db_path: Path, proc: subprocess.Popen, key: str | None = None):
        self.url, self.db_path, self.proc = url, db_path, proc
        headers = {"Authorization": f"Bearer {key}"} if key else None
        self.api = httpx.Client(base_url=url, timeout=30, headers=headers)

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

    def findings(self, run_id: str, findings: list[dict]) -> dict[tuple[str, str], int]:
        """Diagnoses stored through the storage layer as the worker does; the earlier ones of
        this test source that are not given again become resolved.

        Their source is not "rule": the real rules, which run after each ingest, would resolve
        a "rule" finding they do not see themselves. Returns {(kind, subject): id}.
        """
        from server.diagnoses.repository import FindingIn, sync_findings
        from server.storage.engine import make_engine, make_sessionmaker

        engine = make_engine(f"sqlite:///{self.db_path}")
        try:
            with make_sessionmaker(engine).begin() as session:
                sync_findings(session, run_id, "frontend-test", [FindingIn(**f) for f in findings])
        finally:
            engine.dispose()
        found = self.api.get(f"/api/v1/runs/{run_id}/diagnoses").json()["diagnoses"]
        return {(d["kind"], d["subject"]): d["id"] for d in found}

    def rule_finding(self, run_id: str, **finding) -> int:
        """One diagnosis with a step range (see ``findings``); returns its id."""
        ids = self.findings(run_id, [finding])
        return ids[(finding["kind"], finding.get("subject", ""))]

    def run(self, run_id: str) -> dict:
        r = self.api.get(f"/api/v1/runs/{run_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def stop(self) -> None:
        self.api.close()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(db_path: Path, env: dict[str, str] | None = None) -> LiveServer:
    """``losslens serve`` on a free port over a SQLite file; returns once /healthz answers."""
    port = free_port()
    log_path = db_path.with_name(f"server-{port}.log")
    proc = spawn_cli(
        ["serve", "--port", str(port), "--database-url", f"sqlite:///{db_path}"],
        {"LOSSLENS_LOG_LEVEL": "warning", **(env or {})},
        log_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server_up(url) or proc.poll() is not None, 30, "the server to start")
    except AssertionError:
        pass
    if proc.poll() is not None or not server_up(url):
        proc.kill()
        proc.wait()
        pytest.fail(f"the server did not start: {log_path.read_text()[-2000:]}")
    return LiveServer(url, db_path, proc)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("frontend") / "losslens.db")
    yield server
    server.stop()


AUTH_PROJECT = "keyed"


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    """A server with ``LOSSLENS_AUTH=true``; ``keys`` holds an admin key of AUTH_PROJECT made
    with the CLI before the server starts (as an operator does), and a read key (made through
    the storage layer: a second CLI process costs a second); its ``api`` uses the admin key."""
    from server.auth.keys import create_key as store_key
    from server.storage.engine import make_engine, make_sessionmaker

    db_path = tmp_path_factory.mktemp("frontend-auth") / "losslens.db"
    # made by the CLI, which also creates the schema
    keys = {"admin": create_key(AUTH_PROJECT, "admin", database_url=f"sqlite:///{db_path}")}
    engine = make_engine(f"sqlite:///{db_path}")
    try:
        with make_sessionmaker(engine).begin() as session:
            keys["read"] = store_key(session, AUTH_PROJECT, "read")[1]
    finally:
        engine.dispose()
    server = start_server(db_path, {"LOSSLENS_AUTH": "true"})
    server.api.headers["Authorization"] = f"Bearer {keys['admin']}"
    server.keys = keys
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def watched_page(browser, server):
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
    outside = [u for u in pg.requests if not u.startswith(server.url)]
    assert outside == [], outside


@pytest.fixture
def page(browser, live_server):
    yield from watched_page(browser, live_server)


@pytest.fixture
def auth_page(browser, auth_server):
    yield from watched_page(browser, auth_server)


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
