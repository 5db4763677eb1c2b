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


def names_are(page, names: list[str]) -> None:
    page.wait_for_function(
        f"(want) => Array.from(document.querySelectorAll('{ROWS} .run-link'))"
        ".map((a) => a.textContent).join('|') === want",
        arg="|".join(names),
    )


def runs_requests(page) -> list[str]:
    return [u for u in page.requests if "/api/v1/runs?" in u]


def test_sort_and_select_for_compare(page, live_server):
    project = new_project()
    ids = {}
    for name, last in (("a-run", 0.5), ("c-run", 0.9), ("b-run", 0.1)):
        ids[name] = live_server.new_run(project, name)
        live_server.post_points(ids[name], {"loss": ([0, 1], [1.0, last]), "acc": ([1], [0.5])})
        live_server.set_status(ids[name], "finished")  # no live polling during the test
    open_page(page, live_server, f"/runs?project={project}", "document.body.dataset.runsReady")
    names_are(page, ["b-run", "c-run", "a-run"])  # the newest first
    # Only the keys the page shows are summarised by the server.
    assert all("summary_keys=loss%2Cval%2Floss" in u for u in runs_requests(page))
    # Name, status, points and created sort on the server (every matching run) ...
    page.click('th[data-col="name"] button')
    names_are(page, ["a-run", "b-run", "c-run"])
    assert "sort=name" in runs_requests(page)[-1]
    page.click('th[data-col="name"] button')
    names_are(page, ["c-run", "b-run", "a-run"])
    assert "sort=-name" in runs_requests(page)[-1]
    assert "sort=-name" in page.evaluate("location.hash")
    assert "the server sorts" in page.get_attribute('th[data-col="name"] button', "title")
    # ... the last loss in the browser, over the runs loaded, as its tooltip says.
    sent = len(runs_requests(page))
    page.click('th[data-col="loss"] button')
    assert "server cannot sort" in page.get_attribute('th[data-col="loss"] button', "title")
    names = page.locator(f"{ROWS} .run-link").all_inner_texts()
    assert names == ["b-run", "a-run", "c-run"]
    assert len(runs_requests(page)) == sent  # no request: sorted here
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


SEVERITY_RGB = {
    "critical": "rgb(214, 40, 40)",
    "warning": "rgb(224, 138, 0)",
    "info": "rgb(42, 122, 184)",
}


def test_badges_take_the_server_severity_and_count(page, live_server):
    project = new_project()
    run = live_server.new_run(project, "layers")
    live_server.post_points(run, {"loss": ([0, 1], [1.0, 0.9])})
    live_server.findings(
        run,
        [
            # A kind whose name sounds critical, with the severity the server gives it.
            {"kind": "nan_loss", "severity": "info", "title": "one NaN, long ago"},
            {"kind": "dead_relu", "severity": "warning", "subject": "fc1", "title": "fc1 dead"},
            {"kind": "dead_relu", "severity": "critical", "subject": "fc2", "title": "fc2 dead"},
            {"kind": "dead_relu", "severity": "warning", "subject": "fc3", "title": "fc3 dead"},
            {"kind": "val_plateau", "severity": "warning", "title": "val/loss is flat"},
        ],
    )
    open_page(page, live_server, f"/runs?project={project}", "document.body.dataset.runsReady")
    badges = page.evaluate(
        f"""Array.from(document.querySelectorAll('tr[data-run-id="{run}"] .badge')).map((b) => ({{
            kind: b.dataset.kind, cls: b.className, text: b.textContent,
            bg: getComputedStyle(b).backgroundColor, title: b.title }}))"""
    )
    # Worst first, as the server orders them; the count shown when over one.
    assert [b["kind"] for b in badges] == ["dead_relu", "val_plateau", "nan_loss"]
    assert [b["text"] for b in badges] == ["dead relu×3", "val plateau", "nan loss"]
    for b, severity in zip(badges, ["critical", "warning", "info"], strict=True):
        assert f"sev-{severity}" in b["cls"].split()
        assert b["bg"] == SEVERITY_RGB[severity]
    assert "3 diagnoses" in badges[0]["title"]
    screenshot(page, "runs-badges")
