"""log(): validation errors that name the key, coercion, steps, the queue bound."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from client_sdk import Run
from client_sdk.testing import MemoryTransport


@pytest.fixture
def run(fast):
    transport = MemoryTransport()
    r = Run(project="p", transport=transport, settings=fast)
    r.transport = transport
    yield r
    r.finish(timeout=5)


@pytest.mark.parametrize(
    ("value", "kind", "words"),
    [
        ("0.5", TypeError, "must be a number, got str"),
        (None, TypeError, "must be a number, got NoneType"),
        ([1.0], TypeError, "got list"),
        ({"a": 1}, TypeError, "got dict"),
        (True, TypeError, "is a bool"),
        (np.bool_(True), TypeError, "is a bool"),
        (np.array([1.0, 2.0]), TypeError, "must be a scalar"),
        (np.array([1.0]), TypeError, "must be a scalar"),
        (torch.ones(2), TypeError, "must be a scalar"),
        (1 + 2j, TypeError, "got complex"),
    ],
)
def test_bad_values_raise_naming_the_key(run, value, kind, words):
    with pytest.raises(kind, match=words) as info:
        run.log({"good": 1.0, "val/acc": value})
    assert "'val/acc'" in str(info.value)


@pytest.mark.parametrize(
    ("key", "kind", "words"),
    [
        (3, TypeError, "metric key 3 must be a str, not int"),
        (None, TypeError, "metric key None must be a str"),
        ("", ValueError, "metric key '' is empty"),
        ("x" * 251, ValueError, "is 251 characters long"),
        ("bad\nkey", ValueError, r"'bad\\nkey' contains a control character"),
        ("bad\x00", ValueError, "control character"),
        ("del\x7f", ValueError, "control character"),
        ("half\ud800", ValueError, "lone surrogate"),
    ],
)
def test_bad_keys_raise_naming_the_key(run, key, kind, words):
    with pytest.raises(kind, match=words):
        run.log({"loss": 1.0, key: 2.0})


def test_a_bad_call_queues_nothing_and_does_not_advance_the_step(run):
    with pytest.raises(TypeError):
        run.log({"loss": 1.0, "acc": "high"})
    run.log({"loss": 2.0})
    run.flush(5)
    assert run.transport.series(run.id, "loss") == ([0], [2.0])
    assert run.transport.series(run.id, "acc") == ([], [])


def test_long_unicode_keys_at_the_limit_are_fine(run):
    key = "é" * 250
    run.log({key: 1.0, "grad_norm/layers.0": 2.0})
    run.flush(5)
    assert run.transport.series(run.id, key) == ([0], [1.0])


def test_numpy_scalars_and_0d_tensors_are_coerced(run):
    run.log({"a": np.float32(0.5), "b": np.int64(3), "c": torch.tensor(0.25),
             "d": np.float64(1.5), "e": 7, "f": 2**70})
    run.flush(5)
    t = run.transport
    assert [t.series(run.id, k)[1][0] for k in "abcdef"] == [0.5, 3.0, 0.25, 1.5, 7.0, 2.0**70]


def test_data_is_copied_at_log_time(run):
    data = {"loss": 1.0}
    run.log(data)
    data["loss"] = 99.0
    data["other"] = 3.0
    run.flush(5)
    assert run.transport.series(run.id, "loss") == ([0], [1.0])
    assert run.transport.series(run.id, "other") == ([], [])


def test_log_takes_mappings_not_other_things(run):
    with pytest.raises(TypeError, match="takes a dict"):
        run.log([("loss", 1.0)])


def test_nan_and_infinities_travel_as_strings_and_come_back(run):
    run.log({"loss": math.nan, "up": math.inf, "down": -math.inf, "ok": 1e-300})
    run.flush(5)
    t = run.transport
    batch = [r for r in t.requests if r.path.endswith("/points")][0].json
    assert batch["points"]["loss"]["values"] == ["NaN"]
    assert batch["points"]["up"]["values"] == ["Infinity"]
    assert batch["points"]["down"]["values"] == ["-Infinity"]
    assert math.isnan(t.series(run.id, "loss")[1][0])
    assert t.series(run.id, "up")[1] == [math.inf]
    assert t.series(run.id, "ok")[1] == [1e-300]


def test_default_steps_auto_increment_after_explicit_steps(run):
    run.log({"a": 0.0})  # 0
    run.log({"a": 1.0})  # 1
    run.log({"a": 10.0}, step=10)
    run.log({"a": 11.0})  # 11 = last explicit + 1
    run.log({"b": 5.0}, step=5)  # an earlier explicit step does not move the default back
    run.log({"a": 12.0})  # 12
    run.flush(5)
    assert run.transport.series(run.id, "a")[0] == [0, 1, 10, 11, 12]
    assert run.transport.series(run.id, "b")[0] == [5]


def test_same_step_for_train_and_validation_keys(run):
    for step in range(3):
        run.log({"loss": float(step)}, step=step)
        run.log({"val/loss": float(step)}, step=step)
    run.flush(5)
    assert run.transport.series(run.id, "val/loss")[0] == [0, 1, 2]


@pytest.mark.parametrize(
    ("step", "kind", "words"),
    [(-1, ValueError, "out of range"), (2**63, ValueError, "out of range"),
     (1.0, TypeError, "step must be an int"), (True, TypeError, "step must be an int"),
     ("3", TypeError, "step must be an int")],
)
def test_bad_steps(run, step, kind, words):
    with pytest.raises(kind, match=words):
        run.log({"a": 1.0}, step=step)


def test_numpy_int_steps_and_the_largest_step(run):
    run.log({"a": 1.0}, step=np.int64(7))
    run.log({"a": 2.0}, step=2**63 - 1)
    run.flush(5)
    assert run.transport.series(run.id, "a")[0] == [7, 2**63 - 1]


def test_an_empty_dict_logs_nothing(run):
    run.log({})
    run.log({"a": 1.0})
    run.flush(5)
    assert run.transport.series(run.id, "a")[0] == [0]


def test_queue_over_its_bound_drops_and_counts_and_the_server_is_told(fast):
    transport = MemoryTransport()
    s = fast.with_overrides(max_queue_points=100, flush_interval=30.0, batch_points=10**6)
    run = Run(project="p", transport=transport, settings=s)
    for i in range(30):
        run.log({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0}, step=i)  # 5 points each
    assert run.dropped == 50
    assert run.finish(timeout=5)
    assert transport.num_points(run.id) == 100
    assert transport.dropped[run.id] == 50


def test_log_from_many_threads(run):
    def worker(offset: int) -> None:
        for i in range(500):
            run.log({f"t{offset}": float(i)}, step=offset * 1000 + i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.flush(5)
    assert run.transport.num_points(run.id) == 2000


def test_log_after_finish_is_ignored_with_one_warning(run, caplog):
    run.finish(timeout=5)
    run.log({"a": 1.0})
    run.log({"a": 2.0})
    warnings = [r for r in caplog.records if "after finish" in r.getMessage()]
    assert len(warnings) == 1
