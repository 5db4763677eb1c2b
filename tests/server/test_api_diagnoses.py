"""Diagnoses through the API: model checks, rule findings kept when resolved, mutes, search."""

from __future__ import annotations

from server.diagnoses.repository import FindingIn, sync_findings
from server.storage.engine import make_engine, make_sessionmaker
from tests.server.factories import new_run, post_points

CHECK = {
    "kind": "missing_bias",
    "severity": "warning",
    "subject": "fc1",
    "title": "fc1 has no bias",
    "recommendation": "add bias=True",
    "evidence": {"n": 1},
}


def _rule_findings(db_url, run_id, findings):
    # Source "test", not "rule": the server's own diagnosis of these runs (in-process, after
    # each batch) syncs the "rule" findings and must not resolve these.
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as s:
        sync_findings(s, run_id, "test", findings)
    engine.dispose()


def _nan(step=150):
    return FindingIn(
        kind="nan_loss",
        severity="critical",
        title="loss is NaN",
        step_start=step,
        step_end=step + 10,
        evidence={"first_nan_step": step},
    )


def test_model_checks_are_stored_and_replaced(client):
    run_id = new_run(client)
    r = client.put(f"/api/v1/runs/{run_id}/model-checks", json={"findings": [CHECK]})
    assert r.status_code == 200
    (d,) = r.json()["diagnoses"]
    assert (d["kind"], d["subject"], d["source"], d["status"]) == (
        "missing_bias",
        "fc1",
        "model_check",
        "active",
    )
    r = client.put(f"/api/v1/runs/{run_id}/model-checks", json={"findings": []})
    assert [d["status"] for d in r.json()["diagnoses"]] == ["resolved"]


def test_bad_model_checks_are_422(client):
    run_id = new_run(client)
    for bad in (
        {**CHECK, "severity": "fatal"},
        {**CHECK, "kind": "Bad Kind"},
        {**CHECK, "evidence": {"x": float("inf")}},
        {**CHECK, "title": ""},
    ):
        import json

        r = client.put(
            f"/api/v1/runs/{run_id}/model-checks",
            content=json.dumps({"findings": [bad]}),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422, bad
    assert client.get(f"/api/v1/runs/{run_id}/diagnoses").json()["diagnoses"] == []


def test_a_finding_that_no_longer_holds_is_resolved_not_deleted(client, db_url):
    run_id = new_run(client)
    _rule_findings(db_url, run_id, [_nan()])
    assert client.get(f"/api/v1/runs/{run_id}").json()["diagnoses"] == ["nan_loss"]
    _rule_findings(db_url, run_id, [])
    (d,) = client.get(f"/api/v1/runs/{run_id}/diagnoses").json()["diagnoses"]
    assert (d["status"], d["step_start"], d["step_end"]) == ("resolved", 150, 160)
    assert d["resolved_at"] is not None
    assert client.get(f"/api/v1/runs/{run_id}").json()["diagnoses"] == []
    _rule_findings(db_url, run_id, [_nan(170)])  # it comes back: the same row, active again
    (d,) = client.get(f"/api/v1/runs/{run_id}/diagnoses").json()["diagnoses"]
    assert (d["status"], d["step_start"], d["resolved_at"]) == ("active", 170, None)


def test_the_ingest_answer_carries_active_unmuted_diagnoses(client, db_url):
    run_id = new_run(client)
    _rule_findings(db_url, run_id, [_nan()])
    r = post_points(client, run_id, {"loss": {"steps": [1], "values": [1.0]}})
    assert [d["kind"] for d in r.json()["diagnoses"]] == ["nan_loss"]
    assert client.put(f"/api/v1/runs/{run_id}/mutes/nan_loss").json() == {"kinds": ["nan_loss"]}
    r = post_points(client, run_id, {"loss": {"steps": [2], "values": [1.0]}})
    assert r.json()["diagnoses"] == []
    assert client.get(f"/api/v1/runs/{run_id}").json()["diagnoses"] == []
    (d,) = client.get(f"/api/v1/runs/{run_id}/diagnoses").json()["diagnoses"]
    assert d["muted"] and d["status"] == "active"  # still recorded
    _rule_findings(db_url, run_id, [_nan()])  # a later diagnosis keeps the mute
    assert client.get(f"/api/v1/runs/{run_id}").json()["diagnoses"] == []
    assert client.delete(f"/api/v1/runs/{run_id}/mutes/nan_loss").status_code == 204
    assert client.get(f"/api/v1/runs/{run_id}").json()["diagnoses"] == ["nan_loss"]
    assert client.get(f"/api/v1/runs/{run_id}/mutes").json() == {"kinds": []}


def test_a_kind_can_be_muted_before_it_fires(client, db_url):
    run_id = new_run(client)
    client.put(f"/api/v1/runs/{run_id}/mutes/nan_loss")
    _rule_findings(db_url, run_id, [_nan()])
    assert client.get(f"/api/v1/runs/{run_id}").json()["diagnoses"] == []
    assert client.put(f"/api/v1/runs/{run_id}/mutes/Not-A-Kind").status_code == 422


def test_search_across_runs(client, db_url):
    a = new_run(client, project="p1")
    b = new_run(client, project="p2")
    _rule_findings(db_url, a, [_nan()])
    _rule_findings(
        db_url, b, [_nan(), FindingIn(kind="overfitting", severity="warning", title="gap grows")]
    )

    def kinds(**params):
        rows = client.get("/api/v1/diagnoses", params=params).json()["diagnoses"]
        return sorted((d["run_id"], d["kind"]) for d in rows)

    assert kinds(project="p1") == [(a, "nan_loss")]
    assert kinds(kind="overfitting") == [(b, "overfitting")]
    assert kinds(severity="critical") == sorted([(a, "nan_loss"), (b, "nan_loss")])
    client.put(f"/api/v1/runs/{a}/mutes/nan_loss")
    assert kinds(severity="critical") == [(b, "nan_loss")]
    assert len(kinds(severity="critical", include_muted="true")) == 2
    assert client.get("/api/v1/diagnoses", params={"severity": "fatal"}).status_code == 422


def test_a_rule_and_a_model_check_may_report_the_same_kind_on_one_layer(client, db_url):
    run_id = new_run(client)
    check = {**CHECK, "kind": "symmetric_init", "subject": "fc1"}
    client.put(f"/api/v1/runs/{run_id}/model-checks", json={"findings": [check]})
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as s:
        sync_findings(
            s,
            run_id,
            "rule",
            [
                FindingIn(
                    kind="symmetric_init", severity="critical", title="all equal", subject="fc1"
                )
            ],
        )
    engine.dispose()
    rows = client.get(f"/api/v1/runs/{run_id}/diagnoses").json()["diagnoses"]
    assert sorted(d["source"] for d in rows) == ["model_check", "rule"]
    badges = client.get(f"/api/v1/runs/{run_id}").json()["badges"]
    assert badges == [{"kind": "symmetric_init", "severity": "critical", "count": 2}]
