"""The runs and projects API on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.server.factories import new_run, post_points


def test_put_creates_then_updates_idempotently(client):
    run_id = str(uuid.uuid4())
    body = {"project": "digits", "name": "mlp", "config": {"lr": 3e-4}, "tags": ["a", "b"]}
    first = client.put(f"/api/v1/runs/{run_id}", json=body)
    assert first.status_code == 201
    again = client.put(f"/api/v1/runs/{run_id}", json=body)
    assert again.status_code == 200
    run = again.json()
    assert (run["project"], run["name"], run["config"], run["tags"]) == (
        "digits",
        "mlp",
        {"lr": 3e-4},
        ["a", "b"],
    )
    assert run["status"] == "running"
    updated = client.put(f"/api/v1/runs/{run_id}", json={"name": "mlp-2"}).json()
    assert (updated["name"], updated["config"], updated["tags"]) == (
        "mlp-2",
        {"lr": 3e-4},
        ["a", "b"],
    )


def test_uppercase_uuid_is_the_same_run(client):
    run_id = new_run(client)
    assert client.get(f"/api/v1/runs/{run_id.upper()}").json()["id"] == run_id


def test_patch_status_and_tags(client):
    run_id = new_run(client)
    r = client.patch(f"/api/v1/runs/{run_id}", json={"status": "finished", "tags": ["done"]})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["tags"]) == ("finished", ["done"])
    assert r.json()["finished_at"] is not None
    assert client.patch(f"/api/v1/runs/{run_id}", json={"status": "exploded"}).status_code == 422


def test_list_filters_and_paginates(client):
    a = new_run(client, project="p1", name="alpha-lr0.1", tags=["sweep"])
    b = new_run(client, project="p1", name="beta", tags=["sweep", "best"])
    c = new_run(client, project="p2", name="ALPHA-2")
    client.patch(f"/api/v1/runs/{b}", json={"status": "failed"})

    def ids(**params):
        return [r["id"] for r in client.get("/api/v1/runs", params=params).json()["runs"]]

    assert set(ids(project="p1")) == {a, b}
    assert ids(status="failed") == [b]
    assert set(ids(tag="sweep")) == {a, b} and ids(tag="best") == [b]
    assert set(ids(q="alpha")) == {a, c}
    assert ids(q="%") == [] and ids(q="_") == []  # LIKE wildcards are plain text
    page = client.get("/api/v1/runs", params={"limit": 2, "offset": 0}).json()
    rest = client.get("/api/v1/runs", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 3 and len(page["runs"]) == 2 and len(rest["runs"]) == 1
    assert {r["id"] for r in page["runs"] + rest["runs"]} == {a, b, c}


def test_projects_are_listed_with_counts(client):
    new_run(client, project="p1")
    new_run(client, project="p1")
    new_run(client, project="p2")
    projects = client.get("/api/v1/projects").json()["projects"]
    assert [(p["name"], p["num_runs"]) for p in projects] == [("p1", 2), ("p2", 1)]


def test_delete_removes_the_run_and_its_points(client):
    run_id = new_run(client)
    assert post_points(client, run_id, {"loss": {"steps": [0], "values": [1.0]}}).status_code == 200
    assert client.delete(f"/api/v1/runs/{run_id}").status_code == 204
    assert client.get(f"/api/v1/runs/{run_id}").status_code == 404
    assert client.get(f"/api/v1/runs/{run_id}/keys").status_code == 404


def test_summary_in_run_shows_last_values_even_nan(client):
    run_id = new_run(client)
    post_points(client, run_id, {"loss": {"steps": [0, 1], "values": [2.0, "NaN"]}})
    summary = client.get(f"/api/v1/runs/{run_id}").json()["summary"]["loss"]
    assert summary["last_value"] == "NaN" and summary["nan_count"] == 1 and summary["count"] == 2


@pytest.mark.parametrize(
    "path_id", ["not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "1' OR '1'='1", "x" * 60]
)
def test_ids_that_are_not_uuids_are_422(client, path_id):
    r = client.get(f"/api/v1/runs/{path_id}")
    assert r.status_code in (404, 422)
    assert r.status_code != 500


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"name": "x"}, "project is required"),
        ({"project": ""}, "project is empty"),
        ({"project": "p", "name": "a\x00b"}, "control character"),
        ({"project": "p", "name": "x" * 251}, "limit is 250"),
        ({"project": "p", "tags": ["\ud800"]}, "lone surrogate"),
        ({"project": "p", "config": {"lr": float("nan")}}, "finite"),
        ({"project": "p", "status": "weird"}, "status"),
        ({"project": "p", "color": "red"}, "color"),
        ({"project": 5}, "project"),
    ],
)
def test_bad_run_bodies_are_422_with_a_reason(client, body, fragment):
    import json

    run_id = str(uuid.uuid4())
    raw = json.dumps(body)  # NaN written as the bare token, as a careless client would
    r = client.put(
        f"/api/v1/runs/{run_id}", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]
    assert len(r.text) < 600
    assert client.get(f"/api/v1/runs/{run_id}").status_code == 404


def test_openapi_and_health(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/runs/{run_id}/points" in paths and "/api/v1/runs/{run_id}/series" in paths


def test_a_silent_run_is_marked_crashed_and_revives_when_it_sends(client, db_url):
    from server.runs.reaper import mark_crashed
    from server.storage.engine import make_engine, make_sessionmaker

    run_id = new_run(client)
    done = new_run(client)
    client.patch(f"/api/v1/runs/{done}", json={"status": "finished"})
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as s:
        assert mark_crashed(s, timeout_s=3600) == 0  # heard from just now
    with make_sessionmaker(engine).begin() as s:
        assert mark_crashed(s, timeout_s=-1) == 1  # only the running one
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "crashed"
    assert client.get(f"/api/v1/runs/{done}").json()["status"] == "finished"
    assert client.post(f"/api/v1/runs/{run_id}/heartbeat").status_code == 204
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    with make_sessionmaker(engine).begin() as s:
        mark_crashed(s, timeout_s=-1)
    engine.dispose()
    post_points(client, run_id, {"loss": {"steps": [0], "values": [1.0]}})
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"


@pytest.mark.parametrize(
    "params",
    [
        {"q": "'; DROP TABLE runs; --"},
        {"project": "x' OR '1'='1"},
        {"tag": 'a" OR 1=1 --'},
        {"q": "\\"},
        {"q": "💥" * 50},
    ],
)
def test_sql_like_text_in_filters_is_just_text(client, params):
    run_id = new_run(client, project="safe", name="keep-me")
    r = client.get("/api/v1/runs", params=params)
    assert r.status_code == 200 and r.json()["total"] == 0
    assert client.get(f"/api/v1/runs/{run_id}").status_code == 200
    assert client.get("/api/v1/runs").json()["total"] == 1


def test_sort_and_summary_keys(client):
    a = new_run(client, name="b-run")
    b = new_run(client, name="a-run")
    post_points(
        client,
        a,
        {"loss": {"steps": [0], "values": [1.0]}, "grad_norm/fc1": {"steps": [0], "values": [2.0]}},
    )

    def names(sort):
        return [r["name"] for r in client.get("/api/v1/runs", params={"sort": sort}).json()["runs"]]

    assert names("name") == ["a-run", "b-run"] and names("-name") == ["b-run", "a-run"]
    assert names("-created_at")[0] == "a-run"
    assert client.get("/api/v1/runs", params={"sort": "config"}).status_code == 422
    runs = client.get("/api/v1/runs", params={"summary_keys": "loss,val/loss"}).json()["runs"]
    assert {r["id"]: list(r["summary"]) for r in runs} == {a: ["loss"], b: []}
    runs = client.get("/api/v1/runs", params={"summary_keys": ""}).json()["runs"]
    assert all(r["summary"] == {} for r in runs)
    assert len(client.get("/api/v1/runs").json()["runs"][1]["summary"]) == 2
    _ = b


def test_badges_carry_the_worst_severity_and_a_count(client, db_url):
    from server.diagnoses.repository import FindingIn, sync_findings
    from server.storage.engine import make_engine, make_sessionmaker

    run_id = new_run(client)
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as s:
        sync_findings(
            s,
            run_id,
            "test",
            [
                FindingIn(kind="dead_relu", severity="warning", title="t", subject="relu1"),
                FindingIn(kind="dead_relu", severity="critical", title="t", subject="relu2"),
                FindingIn(kind="overfitting", severity="info", title="t"),
            ],
        )
    engine.dispose()
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["badges"] == [
        {"kind": "dead_relu", "severity": "critical", "count": 2},
        {"kind": "overfitting", "severity": "info", "count": 1},
    ]
    assert run["diagnoses"] == ["dead_relu", "overfitting"]
