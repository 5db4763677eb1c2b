"""What users typed (run names, tags, config, keys) is shown as text, never run as markup."""

from __future__ import annotations

import pytest

from .conftest import chart_data, new_project, open_page, screenshot

pytestmark = pytest.mark.browser

EVIL = "<img src=x onerror=alert(1)>"
EVIL_KEY = "<img src=y onerror=alert(3)>"


def test_markup_in_names_tags_config_and_keys_is_text(page, live_server):
    project = new_project()
    run = live_server.new_run(
        project, EVIL, tags=["<b>bold</b>"], config={"note": "<script>alert(2)</script>"}
    )
    live_server.post_points(
        run, {"loss": ([0, 1], [1.0, 0.5]), f"{EVIL_KEY}/x": ([0, 1], [3.0, 4.0])}
    )
    open_page(page, live_server, f"/runs?project={project}", "document.body.dataset.runsReady")
    assert page.inner_text(f'tr[data-run-id="{run}"] .run-link') == EVIL
    assert page.inner_text(f'tr[data-run-id="{run}"] .tag') == "<b>bold</b>"
    screenshot(page, "runs-escaped")

    page.click(f'tr[data-run-id="{run}"] .run-link')
    page.wait_for_function(f"document.body.dataset.runReady === '{run}'")
    assert page.inner_text("h1.run-name") == EVIL
    assert "<script>alert(2)</script>" in page.inner_text(".side")
    chart_data(page, f"group:{EVIL_KEY}")  # scrolled into view and drawn
    keys = page.evaluate(
        "Array.from(document.querySelectorAll('[data-chart] .legendtext'))"
        ".map((e) => e.textContent)"
    )
    assert f"{EVIL_KEY}/x" in keys  # Plotly shows the key literally

    open_page(
        page,
        live_server,
        f"/compare?runs={run}&key=loss",
        "document.body.dataset.compareReady === 'loss'",
    )
    legend = page.evaluate(
        "Array.from(document.querySelectorAll('.legendtext')).map((e) => e.textContent)"
    )
    assert EVIL in legend
    assert page.inner_text(".compare-col .run-link") == EVIL
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("img[src=y]").count() == 0
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    assert {t["name"] for t in chart_data(page, "compare")} >= {
        "&lt;img src=x onerror=alert(1)&gt;"
    }
