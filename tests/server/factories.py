"""Small builders for server tests."""

from __future__ import annotations

import uuid


def new_run(client, project: str = "proj", **fields) -> str:
    run_id = str(uuid.uuid4())
    r = client.put(f"/api/v1/runs/{run_id}", json={"project": project, **fields})
    assert r.status_code == 201, r.text
    return run_id


def post_points(client, run_id: str, points: dict, batch_id: str | None = None, **extra):
    body = {"batch_id": batch_id or uuid.uuid4().hex, "points": points, **extra}
    return client.post(f"/api/v1/runs/{run_id}/points", json=body)


def read_series(client, run_id: str, keys: str, **params) -> dict:
    r = client.get(f"/api/v1/runs/{run_id}/series", params={"keys": keys, **params})
    assert r.status_code == 200, r.text
    return {s["key"]: s for s in r.json()["series"]}
