"""The points API: exact round trips, downsampling, idempotency, and every kind of bad input."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from tests.server.factories import new_run, post_points, read_series

GOOD = {"loss": {"steps": [0, 1, 2], "values": [1.0, 0.5, 0.25]}}


def test_round_trip_is_exact_with_nan_inf_and_bare_tokens(client):
    run_id = new_run(client)
    raw = (
        '{"batch_id":"b1","points":{"loss":{"steps":[0,1,2,3,4],'
        '"values":[0.1,NaN,"Infinity",-Infinity,"-Infinity"],"wall":[1,2,3,4,5]}}}'
    )
    r = client.post(
        f"/api/v1/runs/{run_id}/points", content=raw, headers={"content-type": "application/json"}
    )
    assert r.json() == {"accepted": 5, "new": 5, "duplicate": False, "diagnoses": []}
    s = read_series(client, run_id, "loss", wall="true")["loss"]
    assert s["steps"] == [0, 1, 2, 3, 4]
    assert s["values"] == [0.1, "NaN", "Infinity", "-Infinity", "-Infinity"]
    assert s["wall"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert (s["total"], s["downsampled"]) == (5, False)


def test_gzip_bodies_are_accepted(client):
    run_id = new_run(client)
    body = gzip.compress(json.dumps({"batch_id": "g", "points": GOOD}).encode())
    r = client.post(
        f"/api/v1/runs/{run_id}/points",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200 and r.json()["new"] == 3


def test_same_batch_twice_is_a_no_op(client):
    run_id = new_run(client)
    assert post_points(client, run_id, GOOD, batch_id="x").json()["new"] == 3
    again = post_points(client, run_id, GOOD, batch_id="x").json()
    assert (again["new"], again["duplicate"]) == (0, True)
    assert client.get(f"/api/v1/runs/{run_id}").json()["num_points"] == 3


def test_a_later_batch_overwrites_a_step(client):
    run_id = new_run(client)
    post_points(client, run_id, GOOD)
    r = post_points(client, run_id, {"loss": {"steps": [1, 3], "values": [9.0, 0.1]}})
    assert r.json()["new"] == 1
    assert read_series(client, run_id, "loss")["loss"]["values"] == [1.0, 9.0, 0.25, 0.1]


def test_downsampling_keeps_the_spike_and_the_nan(client):
    run_id = new_run(client)
    n = 50_000
    values = [1.0 / (1 + i) for i in range(n)]
    values[31_337] = 100.0
    values[40_000] = float("nan")
    steps = list(range(n))
    body = json.dumps({"batch_id": "big", "points": {"loss": {"steps": steps, "values": values}}})
    r = client.post(
        f"/api/v1/runs/{run_id}/points", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 200
    s = read_series(client, run_id, "loss", max_points=500)["loss"]
    assert s["downsampled"] and s["total"] == n and len(s["steps"]) <= 550
    got = dict(zip(s["steps"], s["values"], strict=True))
    assert got[31_337] == 100.0 and got[40_000] == "NaN"
    zoom = read_series(client, run_id, "loss", step_min=31_000, step_max=31_999)["loss"]
    assert len(zoom["steps"]) == 1000 and not zoom["downsampled"]


def test_keys_lists_summaries_and_unknown_keys_read_empty(client):
    run_id = new_run(client)
    post_points(client, run_id, {**GOOD, "val/loss": {"steps": [0], "values": [0.7]}})
    keys = {k["key"]: k for k in client.get(f"/api/v1/runs/{run_id}/keys").json()["keys"]}
    assert set(keys) == {"loss", "val/loss"} and keys["loss"]["count"] == 3
    s = read_series(client, run_id, "nope")["nope"]
    assert s["steps"] == [] and s["total"] == 0


def _stored(client, run_id):
    return read_series(client, run_id, "loss")["loss"]["values"], client.get(
        f"/api/v1/runs/{run_id}"
    ).json()["num_points"]


def _col(steps, values):
    return {"loss": {"steps": steps, "values": values}}


BAD_BODIES = [
    ("malformed JSON", b'{"batch_id": "a", "points": {', "not valid JSON"),
    ("not an object", b"[1, 2]", "JSON object"),
    ("missing points", b'{"batch_id": "a"}', "points"),
    ("missing batch id", json.dumps({"points": GOOD}).encode(), "batch_id"),
    ("bad batch id", json.dumps({"batch_id": "a/b", "points": GOOD}).encode(), "batch_id"),
    ("unknown field", json.dumps({"batch_id": "a", "points": GOOD, "x": 1}).encode(), "unknown"),
    (
        "true as step",
        json.dumps({"batch_id": "a", "points": _col([0, True], [1, 2])}).encode(),
        "True is not an integer",
    ),
    (
        "float step",
        json.dumps({"batch_id": "a", "points": _col([0, 1.5], [1, 2])}).encode(),
        "not an integer",
    ),
    (
        "negative step",
        json.dumps({"batch_id": "a", "points": _col([0, -1], [1, 2])}).encode(),
        "negative",
    ),
    (
        "step over 64 bits",
        json.dumps({"batch_id": "a", "points": _col([2**64], [1])}).encode(),
        "64 bits",
    ),
    (
        "true as value",
        json.dumps({"batch_id": "a", "points": _col([0], [True])}).encode(),
        "not a number",
    ),
    ("string value", json.dumps({"batch_id": "a", "points": _col([0], ["1.0"])}).encode(), "only"),
    (
        "null value",
        json.dumps({"batch_id": "a", "points": _col([0], [None])}).encode(),
        "not a number",
    ),
    (
        "huge int value",
        ('{"batch_id":"a","points":{"loss":{"steps":[0],"values":[1' + "0" * 400 + "]}}}").encode(),
        "float64",
    ),
    (
        "length mismatch",
        json.dumps({"batch_id": "a", "points": _col([0, 1], [1])}).encode(),
        "one length",
    ),
    (
        "missing values",
        json.dumps({"batch_id": "a", "points": {"loss": {"steps": [0]}}}).encode(),
        "steps, values",
    ),
    (
        "empty key",
        json.dumps({"batch_id": "a", "points": {"": {"steps": [0], "values": [1]}}}).encode(),
        "empty",
    ),
    (
        "long key",
        json.dumps(
            {"batch_id": "a", "points": {"k" * 251: {"steps": [0], "values": [1]}}}
        ).encode(),
        "limit is 250",
    ),
    (
        "control char key",
        json.dumps({"batch_id": "a", "points": {"a\nb": {"steps": [0], "values": [1]}}}).encode(),
        "control character",
    ),
    (
        "lone surrogate key",
        b'{"batch_id":"a","points":{"\\ud800":{"steps":[0],"values":[1]}}}',
        "lone surrogate",
    ),
    (
        "duplicate keys",
        b'{"batch_id":"a","points":{"loss":{"steps":[0],"values":[1]},'
        b'"loss":{"steps":[1],"values":[2]}}}',
        "duplicate key",
    ),
    (
        "one bad item among good",
        json.dumps(
            {
                "batch_id": "a",
                "points": {
                    "acc": {"steps": [5], "values": [1]},
                    "loss": {"steps": [5, 6], "values": [1, "x"]},
                },
            }
        ).encode(),
        "only",
    ),
    (
        "deep nesting",
        b'{"batch_id":"a","points":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "nested too deeply",
    ),
    ("not utf-8", b'{"batch_id":"\xff"}', "UTF-8"),
]


@pytest.mark.parametrize("name, body, fragment", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_batches_are_4xx_and_change_nothing(client, name, body, fragment):
    run_id = new_run(client)
    post_points(client, run_id, GOOD)
    before = _stored(client, run_id)
    r = client.post(
        f"/api/v1/runs/{run_id}/points", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert fragment in r.json()["detail"], r.json()["detail"]
    assert len(r.content) < 600  # never echoes the input back
    assert _stored(client, run_id) == before
    keys = [k["key"] for k in client.get(f"/api/v1/runs/{run_id}/keys").json()["keys"]]
    assert keys == ["loss"]


def test_unknown_run_is_404(client):
    r = post_points(client, str(uuid.uuid4()), GOOD)
    assert r.status_code == 404 and "not found" in r.json()["detail"]


def test_body_over_the_limit_is_413_before_it_is_read(client):
    run_id = new_run(client)
    limit = client.app.state.settings.max_body_bytes
    r = client.post(
        f"/api/v1/runs/{run_id}/points",
        content=b"x",
        headers={"content-type": "application/json", "content-length": str(limit + 1)},
    )
    assert r.status_code == 413


def test_gzip_bomb_is_413(settings):
    from fastapi.testclient import TestClient

    from server.app import create_app

    limit = 1 << 20
    settings.max_decompressed_bytes = limit
    with TestClient(create_app(settings)) as client:
        run_id = new_run(client)
        bomb = gzip.compress(b" " * (limit * 50), compresslevel=9)
        assert len(bomb) < limit / 10
        r = client.post(
            f"/api/v1/runs/{run_id}/points",
            content=bomb,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert r.status_code == 413 and "decompresses" in r.json()["detail"]


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"content-type": "application/json", "content-encoding": "br"}, 415),
        ({"content-type": "text/plain"}, 415),
        ({"content-type": "application/json", "content-encoding": "gzip"}, 400),  # not gzip
    ],
)
def test_wrong_content_type_or_encoding(client, headers, status):
    run_id = new_run(client)
    body = json.dumps({"batch_id": "a", "points": GOOD}).encode()
    r = client.post(f"/api/v1/runs/{run_id}/points", content=body, headers=headers)
    assert r.status_code == status
    assert client.get(f"/api/v1/runs/{run_id}").json()["num_points"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"keys": ""},
        {"keys": "loss", "max_points": 1},
        {"keys": "loss", "step_min": -1},
        {"keys": "loss", "step_min": 5, "step_max": 2},
        {"keys": "a\x01"},
        {"keys": "loss", "step_max": 2**64},
    ],
)
def test_bad_series_queries_are_422(client, params):
    run_id = new_run(client)
    r = client.get(f"/api/v1/runs/{run_id}/series", params=params)
    assert r.status_code == 422, r.text


def test_non_finite_numbers_never_make_a_500(client):
    run_id = new_run(client)
    post_points(client, run_id, _col([0, 1, 2], ["NaN", "Infinity", "-Infinity"]))
    for url in (
        f"/api/v1/runs/{run_id}",
        f"/api/v1/runs/{run_id}/keys",
        "/api/v1/runs",
        f"/api/v1/runs/{run_id}/series?keys=loss&max_points=10",
    ):
        r = client.get(url)
        assert r.status_code == 200, url
        json.loads(r.text, parse_constant=lambda c, url=url: pytest.fail(f"bare {c} in {url}"))
    assert client.get(f"/api/v1/runs/{run_id}/keys").json()["keys"][0]["nan_count"] == 1


def test_dropped_points_reported_by_the_client_add_up(client):
    run_id = new_run(client)
    post_points(client, run_id, GOOD, dropped=7)
    post_points(client, run_id, {"loss": {"steps": [9], "values": [1]}}, dropped=3)
    assert client.get(f"/api/v1/runs/{run_id}").json()["dropped_points"] == 10


def test_a_batch_with_only_a_dropped_count_is_accepted(client):
    run_id = new_run(client)
    r = post_points(client, run_id, {}, dropped=5)
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["new"]) == (0, 0)
    assert client.get(f"/api/v1/runs/{run_id}").json()["dropped_points"] == 5


def test_huge_arrays_over_the_points_limit_are_413(settings):
    from fastapi.testclient import TestClient

    from server.app import create_app

    settings.max_points_per_batch = 1000
    with TestClient(create_app(settings)) as client:
        run_id = new_run(client)
        r = post_points(
            client,
            run_id,
            {
                "a": {"steps": list(range(600)), "values": [0] * 600},
                "b": {"steps": list(range(600)), "values": [0] * 600},
            },
        )
        assert r.status_code == 413 and "more than 1000 points" in r.json()["detail"]
        assert client.get(f"/api/v1/runs/{run_id}/keys").json()["keys"] == []


def test_keys_holding_commas_are_read_with_repeated_key_parameters(client):
    run_id = new_run(client)
    post_points(client, run_id, {"acc,top5": {"steps": [0], "values": [0.5]}, **GOOD})
    r = client.get(f"/api/v1/runs/{run_id}/series", params=[("key", "acc,top5"), ("key", "loss")])
    assert [s["key"] for s in r.json()["series"]] == ["acc,top5", "loss"]
    assert r.json()["series"][0]["values"] == [0.5]
    assert client.get(f"/api/v1/runs/{run_id}/series").status_code == 422
