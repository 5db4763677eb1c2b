"""The compare page: one key across runs, overlaid; diagnoses side by side."""

from __future__ import annotations

import pytest

from .conftest import chart_data, new_project, open_page, screenshot

pytestmark = pytest.mark.browser


def test_overlays_two_runs_with_diagnoses_side_by_side(page, live_server):
    project = new_project()
    a = live_server.new_run(project, "lr-1e-3")
    b = live_server.new_run(project, "lr-1e-1")
    steps = list(range(300))
    live_server.post_points(
        a, {"loss": (steps, [2.0 - s / 200 for s in steps]), "val/acc": ([299], [0.9])}
    )
    live_server.post_points(b, {"loss": (steps, [2.0 + s / 100 for s in steps[:-1]] + ["NaN"])})
    live_server.rule_finding(
        b,
        kind="loss_divergence",
        severity="critical",
        subject="loss",
        title="The loss diverges",
        step_start=100,
        step_end=299,
    )
    open_page(
        page,
        live_server,
        f"/compare?runs={a},{b}&key=loss",
        "document.body.dataset.compareReady === 'loss'",
    )
    names = {t["name"] for t in chart_data(page, "compare")}
    assert {"lr-1e-3", "lr-1e-3 (smoothed)", "lr-1e-1", "lr-1e-1 (smoothed)"} <= names
    assert "lr-1e-1: NaN ×1" in names
    cols = page.locator(".compare-col")
    assert cols.count() == 2
    assert cols.nth(1).locator('.diag[data-kind="loss_divergence"]').count() == 1
    assert "No diagnoses" in cols.nth(0).inner_text()
    screenshot(page, "compare")

    page.select_option("#compare-key", "val/acc")
    page.wait_for_function(
        "document.body.dataset.compareReady === 'val/acc'"
        " || location.hash.includes('key=val%2Facc')"
    )
    page.wait_for_function(
        "(document.querySelector('[data-chart=\"compare\"] .plot').data || [])"
        ".some((t) => t.name === 'lr-1e-3' && t.y.length === 1)"
    )
    assert 'has no key "val/acc"' in cols.nth(1).inner_text()


def test_no_selection_explains_how(page, live_server):
    open_page(page, live_server, "/compare")
    page.wait_for_selector(".empty")
    assert "No runs selected" in page.inner_text(".empty")


def test_a_run_that_cannot_be_loaded_is_said_in_the_page(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "present")
    live_server.post_points(run, {"loss": ([0, 1], [1.0, 0.9])})
    gone = "00000000-0000-4000-8000-00000000dead"
    open_page(
        page,
        live_server,
        f"/compare?runs={run},{gone}&key=loss",
        "document.body.dataset.compareReady === 'loss'",
    )
    banner = page.locator("#error-banner")
    assert banner.is_visible()
    assert "1 of the selected runs could not be loaded" in banner.inner_text()
    assert "not found" in banner.inner_text()
    assert page.locator(".compare-col").count() == 1
    # The browser logs the 404 answers itself; nothing else may be in the console.
    page.console_errors[:] = [e for e in page.console_errors if "404" not in e]
