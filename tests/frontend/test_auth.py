"""Signing in with an API key (LOSSLENS_AUTH=true): the form, the cookie session, CSRF on the
requests that change something, mutes for admins only, signing out."""

from __future__ import annotations

import pytest

from .conftest import AUTH_PROJECT, open_page, screenshot

pytestmark = pytest.mark.browser

HELP = "losslens keys create --project P --scope read"
ROWS = "#runs-table tbody tr"


def expected_401s(pg) -> None:
    """Chromium logs every 401 answer it receives (GET /session before signing in, the wrong
    key); they are the expected answers of this flow, nothing else may be in the console."""
    pg.console_errors[:] = [e for e in pg.console_errors if "status of 401" not in e]


def sign_in(pg, key: str) -> None:
    pg.wait_for_selector("#signin-form")
    pg.fill("#api-key", key)
    pg.click("#sign-in")
    pg.wait_for_selector("#signin-form", state="detached")


def runs_shown(pg) -> None:
    pg.wait_for_function("document.body.dataset.runsReady")


def test_sign_in_list_mute_with_csrf_and_sign_out(auth_page, auth_server):
    pg, srv = auth_page, auth_server
    run = srv.new_run(AUTH_PROJECT, "keyed-run")
    srv.post_points(run, {"loss": (range(50), [1.0 - s / 100 for s in range(50)])})
    srv.findings(
        run,
        [
            {
                "kind": "overfitting",
                "severity": "warning",
                "title": "val/loss rises while loss falls",
                "recommendation": "Keep the checkpoint of step 20.",
                "subject": "val/loss",
                "step_start": 20,
                "step_end": 49,
            }
        ],
    )

    # 401 → the form: a password field, and how to get a key.
    open_page(pg, srv, "/runs")
    pg.wait_for_selector("#signin-form")
    assert pg.get_attribute("#api-key", "type") == "password"
    assert HELP in pg.inner_text("#signin-form")
    assert pg.is_hidden(".nav") and pg.is_hidden("#project-switch") and pg.is_hidden("#sign-out")
    pg.fill("#api-key", "ll_not-a-key")
    pg.click("#sign-in")
    pg.wait_for_selector("#signin-error:not([hidden])")
    assert "unknown or revoked" in pg.inner_text("#signin-error")
    screenshot(pg, "signin")

    # Sign in → the runs of the key's project; the cookie holding the key is HTTP-only.
    pg.fill("#api-key", srv.keys["admin"])
    pg.click("#sign-in")
    runs_shown(pg)
    assert pg.locator(ROWS).count() == 1
    row = pg.locator(f'tr[data-run-id="{run}"]')
    assert row.locator('.badge[data-kind="overfitting"]').count() == 1
    assert pg.inner_text("#project-fixed") == f"Project {AUTH_PROJECT}"
    assert pg.is_hidden("#project-switch")  # a key of one project: no switching
    assert pg.is_visible("#sign-out")
    cookies = {c["name"]: c for c in pg.context.cookies()}
    assert cookies["losslens_key"]["httpOnly"] is True
    assert cookies["losslens_csrf"]["httpOnly"] is False
    screenshot(pg, "runs-signed-in")

    # An admin mutes a kind: the PUT echoes the CSRF cookie (else the server answers 403).
    pg.click(f'tr[data-run-id="{run}"] .run-link')
    pg.wait_for_function(f"document.body.dataset.runReady === '{run}'")
    with pg.expect_request(lambda r: r.method == "PUT" and "/mutes/" in r.url) as put:
        pg.click('#diagnoses-panel .mute-toggle[data-kind="overfitting"]')
    assert put.value.headers.get("x-losslens-csrf") == cookies["losslens_csrf"]["value"]
    card = pg.locator('#diagnoses-panel .diag[data-kind="overfitting"]')
    pg.wait_for_selector('#diagnoses-panel .diag.muted-diag[data-kind="overfitting"]')
    assert "muted" in card.locator(".diag-tags").inner_text()
    chip = card.locator(".sev-chip").evaluate("(e) => getComputedStyle(e).backgroundColor")
    assert chip == "rgb(167, 177, 188)"  # greyed, not the warning colour
    assert card.locator(".mute-toggle").get_attribute("data-action") == "unmute"
    assert "1 muted" in pg.inner_text("#diagnoses-panel h2")
    screenshot(pg, "run-muted")

    # The runs list drops the muted kind's badge.
    pg.evaluate("document.body.dataset.runsReady = ''")
    pg.click(".back")
    runs_shown(pg)
    assert row.locator(".badge").count() == 0

    # Unmute (a DELETE, with the CSRF header too).
    pg.click(f'tr[data-run-id="{run}"] .run-link')
    pg.wait_for_function(f"document.body.dataset.runReady === '{run}'")
    with pg.expect_request(lambda r: r.method == "DELETE" and "/mutes/" in r.url) as delete:
        pg.click('#diagnoses-panel .mute-toggle[data-kind="overfitting"]')
    assert delete.value.headers.get("x-losslens-csrf") == cookies["losslens_csrf"]["value"]
    pg.wait_for_selector('#diagnoses-panel .diag[data-kind="overfitting"][data-muted="false"]')

    # Sign out: back to the form, and a reload stays there (the cookie is gone).
    with pg.expect_request(lambda r: r.method == "DELETE" and r.url.endswith("/session")) as out:
        pg.click("#sign-out")
    assert out.value.headers.get("x-losslens-csrf") == cookies["losslens_csrf"]["value"]
    pg.wait_for_selector("#signin-form")
    pg.reload()
    pg.wait_for_selector("#signin-form")
    assert "losslens_key" not in {c["name"] for c in pg.context.cookies()}

    # A read key sees the diagnoses but no mute control (muting needs admin).
    sign_in(pg, srv.keys["read"])
    pg.wait_for_function(f"document.body.dataset.runReady === '{run}'")
    assert pg.locator('#diagnoses-panel .diag[data-kind="overfitting"]').count() == 1
    assert pg.locator("#diagnoses-panel .mute-toggle").count() == 0

    # The session ends under the page (cookie expired, key revoked): the next request answers
    # 401, and the page goes back to the form, saying why.
    pg.context.clear_cookies()
    pg.evaluate("location.hash = '#/runs'")
    pg.wait_for_selector("#signin-form")
    assert "Sign in again" in pg.inner_text("#signin-error")
    assert pg.is_hidden("#error-banner")
    expected_401s(pg)
