"""API keys: scopes, project isolation on every endpoint, the dashboard cookie and CSRF."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.auth import keys
from server.storage.engine import make_engine, make_sessionmaker

POINTS = {"batch_id": "b1", "points": {"loss": {"steps": [0], "values": [1.0]}}}


@pytest.fixture
def auth_client(settings):
    settings.auth = True
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def make_key(db_url):
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)

    def make(project: str, scope: str) -> str:
        with maker.begin() as s:
            return keys.create_key(s, project, scope)[1]

    yield make
    engine.dispose()


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _run_in(client, key, project="a") -> str:
    run_id = str(uuid.uuid4())
    r = client.put(f"/api/v1/runs/{run_id}", json={"project": project}, headers=_h(key))
    assert r.status_code == 201, r.text
    assert (
        client.post(f"/api/v1/runs/{run_id}/points", json=POINTS, headers=_h(key)).status_code
        == 200
    )
    return run_id


# Every route that addresses one run, with a body where it needs one.
RUN_ROUTES = [
    ("GET", "", None),
    ("PATCH", "", {"status": "finished"}),
    ("DELETE", "", None),
    ("PUT", "", {"name": "x"}),
    ("POST", "/points", POINTS),
    ("GET", "/keys", None),
    ("GET", "/series?keys=loss", None),
    ("GET", "/diagnoses", None),
    ("PUT", "/model-checks", {"findings": []}),
    ("GET", "/mutes", None),
    ("PUT", "/mutes/nan_loss", None),
    ("DELETE", "/mutes/nan_loss", None),
    ("POST", "/heartbeat", None),
]


def test_every_run_route_is_covered_here(auth_client):
    spec = auth_client.get("/openapi.json").json()["paths"]
    paths = {
        (m.upper(), p)
        for p, ops in spec.items()
        if p.startswith("/api/v1/runs/{run_id}")
        for m in ops
    }
    covered = {
        (m, "/api/v1/runs/{run_id}" + p.split("?")[0].replace("/nan_loss", "/{kind}"))
        for m, p, _ in RUN_ROUTES
    }
    assert paths <= covered, paths - covered


def test_no_key_is_401_everywhere(auth_client):
    run_id = str(uuid.uuid4())
    for method, path, body in RUN_ROUTES:
        r = auth_client.request(method, f"/api/v1/runs/{run_id}{path}", json=body)
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"] == "Bearer"
    for path in ("/api/v1/runs", "/api/v1/projects", "/api/v1/diagnoses", "/api/v1/session"):
        assert auth_client.get(path).status_code == 401
    assert auth_client.get("/healthz").status_code == 200
    r = auth_client.get("/api/v1/runs", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    r = auth_client.get("/api/v1/runs", headers=_h("ll_not-a-real-key"))
    assert r.status_code == 401 and "unknown" in r.json()["detail"]


def test_a_key_of_project_b_sees_nothing_of_project_a(auth_client, make_key):
    a_admin, b_admin = make_key("a", "admin"), make_key("b", "admin")
    run_a = _run_in(auth_client, a_admin)
    for method, path, body in RUN_ROUTES:
        r = auth_client.request(
            method, f"/api/v1/runs/{run_a}{path}", json=body, headers=_h(b_admin)
        )
        assert r.status_code == 404, (method, path, r.status_code)
    # ... nor by listing, searching or naming project a
    assert auth_client.get("/api/v1/runs", headers=_h(b_admin)).json()["total"] == 0
    assert (
        auth_client.get("/api/v1/runs", params={"project": "a"}, headers=_h(b_admin)).json()[
            "total"
        ]
        == 0
    )
    projects = auth_client.get("/api/v1/projects", headers=_h(b_admin)).json()["projects"]
    assert [p["name"] for p in projects] == ["b"]
    assert (
        auth_client.get("/api/v1/diagnoses", params={"project": "a"}, headers=_h(b_admin)).json()[
            "total"
        ]
        == 0
    )
    r = auth_client.put(f"/api/v1/runs/{uuid.uuid4()}", json={"project": "a"}, headers=_h(b_admin))
    assert r.status_code == 403
    # and project a's run is untouched
    run = auth_client.get(f"/api/v1/runs/{run_a}", headers=_h(a_admin)).json()
    assert (run["status"], run["name"], run["num_points"]) == ("running", run_a[:8], 1)


def test_scopes(auth_client, make_key):
    write, read, admin = make_key("a", "write"), make_key("a", "read"), make_key("a", "admin")
    run_id = _run_in(auth_client, write)  # a training job writes
    assert auth_client.get(f"/api/v1/runs/{run_id}", headers=_h(write)).status_code == 403
    assert auth_client.get(f"/api/v1/runs/{run_id}", headers=_h(read)).status_code == 200
    assert (
        auth_client.post(f"/api/v1/runs/{run_id}/points", json=POINTS, headers=_h(read)).status_code
        == 403
    )
    assert auth_client.delete(f"/api/v1/runs/{run_id}", headers=_h(write)).status_code == 403
    assert (
        auth_client.put(f"/api/v1/runs/{run_id}/mutes/nan_loss", headers=_h(read)).status_code
        == 403
    )
    assert auth_client.delete(f"/api/v1/runs/{run_id}", headers=_h(admin)).status_code == 204


def test_a_revoked_key_stops_working(auth_client, make_key, db_url):
    key = make_key("a", "admin")
    assert auth_client.get("/api/v1/runs", headers=_h(key)).status_code == 200
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as s:
        (k,) = keys.list_keys(s, "a")
        assert keys.revoke_key(s, k.id)
    engine.dispose()
    assert auth_client.get("/api/v1/runs", headers=_h(key)).status_code == 401


def test_dashboard_cookie_login_and_csrf(auth_client, make_key):
    key = make_key("a", "admin")
    assert auth_client.post("/api/v1/session", json={"key": "ll_wrong"}).status_code == 401
    r = auth_client.post("/api/v1/session", json={"key": key})
    assert r.status_code == 200 and r.json()["project"] == "a"
    set_cookie = r.headers.get_list("set-cookie")
    key_cookie = next(c for c in set_cookie if c.startswith("losslens_key="))
    assert "HttpOnly" in key_cookie and "SameSite=strict" in key_cookie
    # reads work on the cookie alone
    assert auth_client.get("/api/v1/runs").status_code == 200
    run_id = str(uuid.uuid4())
    # a state change without the CSRF header is refused, with it accepted
    r = auth_client.put(f"/api/v1/runs/{run_id}", json={"project": "a"})
    assert r.status_code == 403 and "csrf" in r.json()["detail"].lower()
    csrf = auth_client.cookies.get("losslens_csrf")
    r = auth_client.put(
        f"/api/v1/runs/{run_id}", json={"project": "a"}, headers={"X-Losslens-CSRF": csrf}
    )
    assert r.status_code == 201
    assert auth_client.delete("/api/v1/session").status_code == 204
    auth_client.cookies.clear()
    assert auth_client.get("/api/v1/runs").status_code == 401


def test_auth_off_is_an_admin_of_everything(client):
    me = client.get("/api/v1/session").json()
    assert me == {"auth": False, "project": None, "grants": ["admin", "read", "write"]}
