"""The run page: traces, NaN markers, layer heatmaps, diagnosis bands, zoom, live updates."""

from __future__ import annotations

import math
import re
import uuid

import pytest

from .conftest import chart_data, chart_layout, new_project, open_page, renders, screenshot

pytestmark = pytest.mark.browser


def ready(run_id: str) -> str:
    return f"document.body.dataset.runReady === '{run_id}'"


def by_name(traces: list[dict]) -> dict[str, dict]:
    return {t["name"]: t for t in traces}


def test_draws_loss_val_lr_nan_markers_and_layer_heatmap(page, live_server):
    project = new_project()
    run = live_server.new_run(
        project, "traces", config={"lr": 0.001, "optimizer": {"name": "adam"}}
    )
    steps = list(range(200))
    loss = [2.0 * math.exp(-s / 50) + 0.1 for s in steps]
    loss[120], loss[121], loss[150] = "NaN", "Infinity", "-Infinity"
    live_server.post_points(
        run,
        {
            "loss": (steps, loss),
            "val/loss": ([0, 100, 199], [2.1, 0.6, 0.3]),
            "lr": (steps, [1e-3] * 200),
            "grad_norm/fc1": (steps, [1.0] * 200),
            "grad_norm/fc2": (steps, [0.01] * 199 + ["NaN"]),
            "act_zero_frac/relu1": (steps, [s / 200 for s in steps]),
            "sys/rss_mb": (steps, [900.0] * 200),
        },
    )
    open_page(page, live_server, f"/run/{run}", ready(run))
    traces = by_name(chart_data(page, "main"))
    assert {"loss", "loss (smoothed)", "val/loss", "lr"} <= set(traces)
    raw = traces["loss"]
    assert len(raw["x"]) == 197  # every finite point, the line not broken by the 3 others
    assert traces["val/loss"]["x"] == [0, 100, 199]
    nan = traces["loss: NaN ×1"]
    assert nan["x"] == [120]
    inf = traces["loss: ±Inf ×2"]
    assert sorted(inf["x"]) == [121, 150]

    heat = chart_data(page, "layer:grad_norm")
    assert heat[0]["type"] == "heatmap" and len(heat[0]["z"]) == 2
    assert any(t["name"].startswith("NaN/Inf") for t in heat)
    dead = chart_data(page, "layer:act_zero_frac")
    assert dead[0]["type"] == "heatmap"
    assert by_name(chart_data(page, "group:sys"))["sys/rss_mb"]["y"][0] == 900
    assert "optimizer.name" in page.inner_text(".side")
    screenshot(page, "run")

    page.check("#log-scale")
    page.wait_for_function(
        "document.querySelector('[data-chart=\"main\"] .plot').layout.yaxis.type === 'log'"
    )
    page.select_option("#x-axis", "wall")
    page.wait_for_function(
        "document.querySelector('[data-chart=\"main\"] .plot').layout.xaxis.type === 'date'"
    )
    assert len(by_name(chart_data(page, "main"))["loss: NaN ×1"]["x"]) == 1


def test_layers_logged_every_10_steps_fill_their_cells(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "sparse-layers")
    steps = list(range(250))
    every10 = steps[::10]
    live_server.post_points(
        run,
        {
            "loss": (steps, [2.0 - s / 200 for s in steps]),
            "grad_norm/fc1": (every10, [1.0] * len(every10)),
            "grad_norm/fc2": (every10, [0.1] * len(every10)),
        },
    )
    open_page(page, live_server, f"/run/{run}", ready(run))
    heat = chart_data(page, "layer:grad_norm")[0]
    assert len(heat["x"]) <= len(every10)  # one column per record at most
    empty = sum(v is None for row in heat["z"] for v in row)
    assert empty == 0, f"{empty} empty cells between records"


def test_diagnosis_band_and_click_zooms_there(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "diverging")
    steps = list(range(1000))
    live_server.post_points(
        run,
        {
            "loss": (steps, [1.0 + (s > 800) * (s - 800) / 10 for s in steps]),
            "lr": (steps, [0.1] * 1000),
        },
    )
    live_server.set_status(run, "failed")
    spike = {"kind": "loss_spike", "severity": "critical", "title": "A spike", "subject": "loss"}
    old = live_server.findings(run, [{**spike, "step_start": 100, "step_end": 110}])
    diag = live_server.rule_finding(  # the spike no longer holds: resolved, kept with its range
        run,
        kind="loss_divergence",
        severity="critical",
        subject="loss",
        title="The loss diverges",
        recommendation="Lower the learning rate.",
        step_start=800,
        step_end=900,
        evidence={"ratio": 9.5},
    )
    open_page(page, live_server, f"/run/{run}", ready(run))
    shapes = chart_layout(page, "main")["shapes"]
    band = [s for s in shapes if s.get("name") == f"diag-{diag}"]
    assert [(b["type"], b["x0"], b["x1"]) for b in band] == [("rect", 800, 900)]
    assert "Lower the learning rate." in page.inner_text("#diagnoses-panel")
    # The resolved one (the real rules found others too): after the active ones, tagged, a
    # lighter grey band.
    cards = page.locator("#diagnoses-panel .diag").all()
    states = [c.get_attribute("data-status") for c in cards]
    assert states[-1] == "resolved" and states.count("resolved") == 1
    assert cards[-1].get_attribute("data-kind") == "loss_spike"
    assert "resolved" in cards[-1].get_attribute("class").split()
    assert cards[-1].locator(".diag-tags").inner_text() == "resolved"
    assert "1 resolved" in page.inner_text("#diagnoses-panel h2")
    grey = [s for s in shapes if s.get("name") == f"diag-{old[('loss_spike', 'loss')]}"]
    assert grey[0]["fillcolor"] == "#8a96a3" and grey[0]["opacity"] < band[0]["opacity"]
    before = renders(page, "main")
    page.click('#diagnoses-panel .diag[data-kind="loss_divergence"]')
    page.wait_for_function(
        f"Number(document.querySelector('[data-chart=\"main\"] .plot').dataset.renders) > {before}"
    )
    lay = chart_layout(page, "main")
    assert (
        lay["xauto"] is False and 740 <= lay["xrange"][0] <= 800 and 900 <= lay["xrange"][1] <= 960
    )
    assert not page.is_disabled("#reset-zoom")
    screenshot(page, "run-diagnosis-zoom")


def test_zoom_refetches_the_range_at_full_resolution(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "long")
    n = 30_000
    values = [1.0 + 0.1 * ((s * 7919) % 13) / 13 for s in range(n)]
    values[20_017] = 50.0  # a one-step spike
    live_server.post_points(run, {"loss": (range(n), values)})
    live_server.set_status(run, "finished")
    open_page(page, live_server, f"/run/{run}", ready(run))
    traces = by_name(chart_data(page, "main"))
    assert len(traces["loss"]["x"]) < 5000  # downsampled: ~2 points per pixel
    assert 50.0 in traces["loss"]["y"]  # the spike survives
    assert "loss min–max" in traces  # the bucket envelope of the downsampled reply
    before = renders(page, "main")
    page.evaluate(
        "Plotly.relayout(document.querySelector('[data-chart=\"main\"] .plot'),"
        " {'xaxis.range[0]': 20000, 'xaxis.range[1]': 20100})"
    )
    page.wait_for_function(
        f"Number(document.querySelector('[data-chart=\"main\"] .plot').dataset.renders) > {before}"
    )
    raw = by_name(chart_data(page, "main"))["loss"]
    inside = [x for x in raw["x"] if 20000 <= x <= 20100]
    assert inside == list(range(20000, 20101))  # every point of the range
    assert chart_layout(page, "main")["xrange"] == [20000, 20100]


def test_live_run_grows_without_reload_and_keeps_zoom(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "live")
    live_server.post_points(run, {"loss": (range(100), [1.0] * 100)})
    open_page(page, live_server, f"/run/{run}", ready(run))
    page.evaluate("window.__noReload = true")
    page.evaluate(
        "Plotly.relayout(document.querySelector('[data-chart=\"main\"] .plot'),"
        " {'xaxis.range[0]': 10, 'xaxis.range[1]': 150})"
    )
    page.wait_for_function("!document.getElementById('reset-zoom').disabled")
    live_server.post_points(run, {"loss": (range(100, 140), [0.5] * 40)})
    page.wait_for_function(
        "(() => { const t = document.querySelector('[data-chart=\"main\"] .plot').data"
        ".find((t) => t.name === 'loss'); return Math.max(...t.x) === 139; })()",
        timeout=4000,
    )
    assert page.evaluate("window.__noReload") is True
    assert chart_layout(page, "main")["xrange"] == [10, 150]  # the user's zoom stays
    # A diagnosis arriving while the page is open shows up as well.
    live_server.rule_finding(
        run,
        kind="loss_plateau",
        severity="info",
        subject="loss",
        title="Plateau",
        step_start=100,
        step_end=139,
    )
    page.wait_for_selector('#diagnoses-panel .diag[data-kind="loss_plateau"]', timeout=4000)
    page.wait_for_function(
        "document.querySelector('[data-chart=\"main\"] .plot').layout.shapes.length > 0"
    )


def test_run_without_points_and_unknown_run(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "fresh")
    open_page(page, live_server, f"/run/{run}")
    page.wait_for_selector(".charts .empty")
    assert 'client_sdk.init(project="' + project in page.inner_text(".charts .empty")
    screenshot(page, "run-empty")
    open_page(page, live_server, "/run/00000000-0000-4000-8000-000000000000")
    page.wait_for_selector(".charts .empty")
    assert "Run not found" in page.inner_text(".charts .empty")
    # The browser logs the 404 answer itself; nothing else may be in the console.
    page.console_errors[:] = [e for e in page.console_errors if "404" not in e]


def test_keys_holding_commas_are_plotted(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "commas")
    live_server.post_points(
        run,
        {
            "loss": ([0, 1, 2], [1.0, 0.8, 0.7]),
            "metrics/acc,top1": ([0, 1, 2], [0.1, 0.2, 0.3]),
            "metrics/acc,top5": ([0, 1, 2], [0.5, 0.6, 0.7]),
        },
    )
    live_server.set_status(run, "finished")
    open_page(page, live_server, f"/run/{run}", ready(run))
    traces = by_name(chart_data(page, "group:metrics"))
    assert traces["metrics/acc,top1"]["y"] == [0.1, 0.2, 0.3]
    assert traces["metrics/acc,top5"]["y"] == [0.5, 0.6, 0.7]
    series = [u for u in page.requests if "/series?" in u]
    assert any("key=metrics%2Facc%2Ctop1&key=metrics%2Facc%2Ctop5" in u for u in series)
    assert not any("keys=" in u for u in series)  # one key per parameter


def test_dropped_points_and_a_crash_are_shown(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "crashed-and-dropping")
    r = live_server.api.post(
        f"/api/v1/runs/{run}/points",
        json={
            "batch_id": uuid.uuid4().hex,
            "points": {"loss": {"steps": list(range(20)), "values": [1.0] * 20}},
            "dropped": 1234,
        },
    )
    assert r.status_code == 200, r.text
    live_server.set_status(run, "crashed")
    open_page(page, live_server, f"/run/{run}", ready(run))
    dropped = page.inner_text("#dropped-points")
    assert re.search(r"1.?234 points dropped", dropped), dropped
    assert "could not keep" in dropped
    crashed = page.inner_text("#crashed-note")
    assert "heartbeat stopped" in crashed and "losslens sync" in crashed
    pill = page.locator(".run-meta .status")
    assert pill.inner_text() == "crashed"
    assert "heartbeat stopped" in pill.get_attribute("title")
    colours = page.evaluate(
        """() => {
            const pill = (s) => { const e = document.createElement('span');
                e.className = `status status-${s}`; document.body.append(e);
                const c = getComputedStyle(e).backgroundColor; e.remove(); return c; };
            return {crashed: pill('crashed'), failed: pill('failed'), finished: pill('finished')};
        }"""
    )
    assert colours["crashed"] not in (colours["failed"], colours["finished"])  # distinct
    screenshot(page, "run-crashed-dropped")
