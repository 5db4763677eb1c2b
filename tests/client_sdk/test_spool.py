"""The write-ahead spool: framing, acks, replay, segment deletion, the size cap."""

from __future__ import annotations

import json
import os

import pytest

from client_sdk import Run, sync_spool
from client_sdk._encode import encode_points, gunzip_bytes, gzip_bytes
from client_sdk._spool import (
    KIND_POINTS,
    RunSpool,
    SpoolFull,
    iter_segment,
    list_segments,
    read_acks,
    read_body,
)
from client_sdk.testing import MemoryTransport

RUN_ID = "0b5ee3a1-6f0c-4a39-9a63-2b1f3c1f9a01"


def _body(bid: str, n: int = 3) -> bytes:
    cols = {"loss": (list(range(n)), [0.5] * n, [1.0] * n)}
    return gzip_bytes(encode_points(bid, cols))


def _spool(root, **kw) -> RunSpool:
    sp = RunSpool(str(root), RUN_ID, kw.get("max_bytes", 1 << 30), kw.get("segment", 1 << 20))
    return sp


def test_records_round_trip_with_their_ids_and_counts(tmp_path):
    sp = _spool(tmp_path)
    assert sp.open({"project": "p"}) == []
    recs = [sp.append(KIND_POINTS, f"b{i}", 3, _body(f"b{i}")) for i in range(3)]
    seg = recs[0].segment
    read = list(iter_segment(seg, with_body=True))
    assert [(r.rid, r.n_points, r.offset) for r in read] == [
        (r.rid, 3, r.offset) for r in recs
    ]
    assert json.loads(gunzip_bytes(read[1].body))["batch_id"] == "b1"
    assert read_body(seg, recs[2].offset) == recs[2].body
    sp.close(remove=False)


def test_a_torn_tail_ends_the_segment(tmp_path):
    sp = _spool(tmp_path)
    sp.open({"project": "p"})
    recs = [sp.append(KIND_POINTS, f"b{i}", 3, _body(f"b{i}")) for i in range(2)]
    sp.close(remove=False)
    seg = recs[0].segment
    with open(seg, "rb") as fh:
        whole = fh.read()
    with open(seg, "ab") as fh:  # a process killed half way through writing a third record
        fh.write(whole[: recs[1].offset - 5])
    assert [r.rid for r in iter_segment(seg)] == ["b0", "b1"]
    with open(seg, "r+b") as fh:  # a flipped byte in the second record: crc mismatch
        fh.seek(recs[1].offset + 40)
        fh.write(b"\xff")
    assert [r.rid for r in iter_segment(seg)] == ["b0"]


def test_replay_skips_acknowledged_records(tmp_path):
    sp = _spool(tmp_path)
    sp.open({"project": "p"})
    recs = [sp.append(KIND_POINTS, f"b{i}", 3, _body(f"b{i}")) for i in range(4)]
    sp.ack(recs[0])
    sp.ack(recs[2])
    assert read_acks(recs[0].segment) == {recs[0].offset, recs[2].offset}
    sp.close(remove=False)  # the process dies: its lock is freed

    again = _spool(tmp_path)
    adopted = again.open({"project": "p"})
    assert [r.rid for r in adopted] == ["b1", "b3"]
    for r in adopted:
        again.ack(r)
    assert list_segments(again.dir) == []  # sealed and fully acknowledged: deleted
    assert again.close(remove=True)
    assert not os.path.exists(again.dir)


def test_a_live_writer_keeps_others_off_its_segments(tmp_path):
    first = _spool(tmp_path)
    first.open({"project": "p"})
    first.append(KIND_POINTS, "b0", 3, _body("b0"))
    second = _spool(tmp_path)
    assert second.open({"project": "p"}) == []  # locked: nothing adopted
    assert not second.owner
    second.close(remove=True)
    assert os.path.isdir(first.dir)
    first.close(remove=False)


def test_segments_roll_and_are_deleted_once_acked(tmp_path):
    sp = _spool(tmp_path, segment=1)  # every record seals the previous segment
    sp.open({"project": "p"})
    recs = [sp.append(KIND_POINTS, f"b{i}", 3, _body(f"b{i}")) for i in range(3)]
    assert len(list_segments(sp.dir)) == 3
    sp.ack(recs[0])
    sp.ack(recs[1])
    assert list_segments(sp.dir) == [recs[2].segment]  # the current one stays open
    sp.ack(recs[2])
    assert len(list_segments(sp.dir)) == 1
    sp.seal()
    assert list_segments(sp.dir) == []
    assert sp.bytes == 0


def test_the_cap_refuses_records(tmp_path):
    one = len(_body("b0")) + 20 + 2
    sp = _spool(tmp_path, max_bytes=2 * one + 10)
    sp.open({"project": "p"})
    sp.other_bytes = 0
    sp.append(KIND_POINTS, "b0", 3, _body("b0"))
    sp.append(KIND_POINTS, "b1", 3, _body("b1"))
    with pytest.raises(SpoolFull):
        sp.append(KIND_POINTS, "b2", 3, _body("b2"))
    sp.close(remove=False)


def test_a_full_spool_drops_and_counts_points(fast, spool_root):
    run = Run(project="p", mode="offline", settings=fast)
    run.log({"a": 1.0, "b": 2.0})
    assert run.flush(5)
    run._sender.spool.max_bytes = run._sender.spool.bytes + run._sender.spool.other_bytes + 10
    run.log({"a": 3.0, "b": 4.0, "c": 5.0})
    assert run.flush(5)
    assert run.dropped == 3
    run.finish(timeout=5)
    transport = MemoryTransport()
    result = sync_spool(str(spool_root), transport=transport)
    assert (result.batches, result.points) == (1, 2)
    assert transport.num_points(run.id) == 2


def test_unwritable_spool_keeps_training_going_with_one_warning(fast, tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool root should be")
    transport = MemoryTransport()
    run = Run(project="p", transport=transport, settings=fast, spool_dir=str(blocker))
    for i in range(50):
        run.log({"loss": float(i)})
        if i % 10 == 0:
            run.flush(5)
    assert run.finish(timeout=5)
    assert transport.num_points(run.id) == 50  # held in memory, then sent
    warnings = [r for r in caplog.records if "cannot write the spool" in r.getMessage()]
    assert len(warnings) == 1


def test_unwritable_spool_and_no_server_keeps_points_in_memory_up_to_the_bound(fast, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    transport = MemoryTransport()
    transport.down = True  # for the whole run
    s = fast.with_overrides(max_queue_points=30, finish_attempts=1)
    run = Run(project="p", transport=transport, settings=s, spool_dir=str(blocker))
    for i in range(10):
        run.log({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0}, step=i)
        run.flush(0.05)  # each call forms its own batch
    assert run.dropped == 20
    assert run._sender.memory_points == 30
    assert not run.finish(timeout=0.5)


def test_run_json_describes_the_run(fast, spool_root):
    run = Run(project="digits", name="mlp", config={"lr": 3e-4, "bad": float("nan")},
              tags=["a"], mode="offline", settings=fast)
    run.log({"loss": 1.0})
    run.finish(status="failed", timeout=5)
    meta = json.loads((spool_root / run.id / "run.json").read_text())
    assert meta["project"] == "digits" and meta["name"] == "mlp" and meta["tags"] == ["a"]
    assert meta["config"] == {"lr": 3e-4, "bad": "NaN"}
    assert meta["status"] == "failed" and meta["mode"] == "offline"
    assert meta["run_id"] == run.id
