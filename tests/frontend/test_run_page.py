"""The run page: traces, NaN markers, layer heatmaps, diagnosis bands, zoom, live updates."""

from __future__ import annotations

import math

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
    diag = live_server.rule_finding(
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
