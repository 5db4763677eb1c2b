"""The runs page: runs with status, last values and diagnosis badges; search and filters."""

from __future__ import annotations

import pytest

from .conftest import new_project, open_page, screenshot

pytestmark = pytest.mark.browser

ROWS = "#runs-table tbody tr"


def test_lists_runs_with_badges_and_last_values(page, live_server):
    project = new_project()
    good = live_server.new_run(project, "baseline-mlp", tags=["baseline"])
    live_server.post_points(
        good, {"loss": (range(10), [2.0 - i / 10 for i in range(10)]), "val/loss": ([9], [1.25])}
    )
    live_server.set_status(good, "finished")
    bad = live_server.new_run(project, "no-bias-cnn", tags=["cnn"])
    live_server.post_points(bad, {"loss": ([0, 1, 2], [2.3, 2.2, "NaN"])})
    live_server.model_checks(
        bad,
        [
            {
                "kind": "missing_bias",
                "severity": "warning",
                "subject": "fc1",
                "title": "fc1 has no bias",
            }
        ],
    )

    open_page(page, live_server, f"/runs?project={project}", "document.body.dataset.runsReady")
    assert page.locator(ROWS).count() == 2
    bad_row = page.locator(f'tr[data-run-id="{bad}"]')
    assert "missing bias" in bad_row.locator(".badge").all_inner_texts()
    assert "NaN" in bad_row.inner_text()  # the last loss value, shown as such
    assert bad_row.locator(".status").inner_text() == "running"
    good_row = page.locator(f'tr[data-run-id="{good}"]')
    assert good_row.locator('.badge[data-kind="missing_bias"]').count() == 0
    assert "1.1" in good_row.inner_text() and "1.25" in good_row.inner_text()
    assert good_row.locator(".status").inner_text() == "finished"
    screenshot(page, "runs")

    page.fill("#run-search", "cnn")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 1")
    assert page.locator(ROWS).get_attribute("data-run-id") == bad
    page.fill("#run-search", "")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 2")
    page.select_option("#status-filter", "finished")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 1")
    assert page.locator(ROWS).get_attribute("data-run-id") == good
    page.select_option("#status-filter", "")
    page.select_option("#tag-filter", "cnn")
    page.wait_for_function(
        f"document.querySelectorAll('{ROWS}').length === 1 && "
        f"document.querySelector('{ROWS}').dataset.runId === '{bad}'"
    )


def test_sort_and_select_for_compare(page, live_server):
    project = new_project()
    ids = {}
    for name, last in (("a-run", 0.5), ("b-run", 0.1), ("c-run", 0.9)):
        ids[name] = live_server.new_run(project, name)
        live_server.post_points(ids[name], {"loss": ([0, 1], [1.0, last])})
    open_page(page, live_server, f"/runs?project={project}", "document.body.dataset.runsReady")
    page.click('th[data-col="loss"] button')
    names = page.locator(f"{ROWS} .run-link").all_inner_texts()
    assert names == ["b-run", "a-run", "c-run"]
    page.check(f'tr[data-run-id="{ids["a-run"]}"] input[type=checkbox]')
    page.check(f'tr[data-run-id="{ids["c-run"]}"] input[type=checkbox]')
    assert page.inner_text("#compare-selected") == "Compare selected (2)"
    page.click("#compare-selected")
    page.wait_for_function("document.body.dataset.compareReady === 'loss'")
    assert page.locator(".compare-col").count() == 2


def test_running_status_is_live(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "live-run")
    live_server.post_points(run, {"loss": ([0], [1.0])})
    open_page(page, live_server, f"/runs?project={project}", "document.body.dataset.runsReady")
    page.evaluate("window.__noReload = true")
    live_server.set_status(run, "crashed")
    page.wait_for_function(
        f"document.querySelector('tr[data-run-id=\"{run}\"] .status').textContent === 'crashed'",
        timeout=6000,
    )
    assert page.evaluate("window.__noReload") is True


def test_empty_project_tells_what_to_do(page, live_server):
    open_page(
        page, live_server, "/runs?project=nothing-here-yet", "document.body.dataset.runsReady"
    )
    text = page.inner_text(".empty")
    assert "No runs yet" in text
    assert 'client_sdk.init(project="nothing-here-yet"' in text
    assert 'client_sdk.log({"loss": loss}, step=step)' in text
    screenshot(page, "runs-empty")
