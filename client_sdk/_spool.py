"""The write-ahead spool: every batch lands on disk before it is posted.

Layout of one run, ``<spool root>/<run id>/``::

    run.json                       the run (project, name, config, tags, url, status, ...)
    lock                           flock()ed by the live process writing the run
    seg-<ms>-<rand>.lls            append-only segments of framed records
    seg-<ms>-<rand>.lls.ack        one line per acknowledged record: its byte offset

A record is a 20-byte little-endian header ``magic "LLS1", kind u8, flags u8, id length u16,
points u32, body length u32, crc32(id + body) u32``, then the id (the batch id, UTF-8) and the
body: exactly the gzipped JSON that is posted. A torn or corrupt tail (a process killed while
writing) ends the segment. A segment that is sealed and fully acknowledged is deleted; the
directory of a finished run whose records are all acknowledged is removed.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]

MAGIC = b"LLS1"
HEADER = struct.Struct("<4sBBHIII")
KIND_POINTS = 1
KIND_MODEL_CHECKS = 2
META_FILE = "run.json"
LOCK_FILE = "lock"
SEGMENT_SUFFIX = ".lls"
ACK_SUFFIX = ".ack"


class SpoolFull(Exception):
    """The spool holds ``spool_max_bytes``; the record was not written."""


class Record:
    """One batch: in a segment at ``offset`` (``segment`` is None when it lives only in
    memory), its body kept in memory or read back from the segment when needed."""

    __slots__ = ("kind", "rid", "n_points", "body", "segment", "offset", "failures")

    def __init__(
        self,
        kind: int,
        rid: str,
        n_points: int,
        body: bytes | None,
        segment: str | None = None,
        offset: int = -1,
    ) -> None:
        self.kind = kind
        self.rid = rid
        self.n_points = n_points
        self.body = body
        self.segment = segment
        self.offset = offset
        self.failures = 0  # server errors (5xx) answered to it so far

    def load_body(self) -> bytes:
        if self.body is not None:
            return self.body
        if self.segment is None:
            raise ValueError("a record held in memory has no body")
        return read_body(self.segment, self.offset)


def frame(kind: int, rid: str, n_points: int, body: bytes) -> bytes:
    rid_b = rid.encode("utf-8")
    crc = zlib.crc32(body, zlib.crc32(rid_b))
    return HEADER.pack(MAGIC, kind, 0, len(rid_b), n_points, len(body), crc) + rid_b + body


def iter_segment(path: str, with_body: bool = False) -> Iterator[Record]:
    """The complete records of a segment, in order; stops at a torn or corrupt tail."""
    with open(path, "rb") as fh:
        data = fh.read()
    pos, size = 0, len(data)
    while pos + HEADER.size <= size:
        magic, kind, _flags, id_len, n_points, body_len, crc = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + id_len + body_len
        if magic != MAGIC or end > size:
            return
        rid_b = data[pos + HEADER.size : pos + HEADER.size + id_len]
        body = data[pos + HEADER.size + id_len : end]
        if zlib.crc32(body, zlib.crc32(rid_b)) != crc:
            return
        yield Record(
            kind, rid_b.decode("utf-8"), n_points, bytes(body) if with_body else None, path, pos
        )
        pos = end


def read_body(path: str, offset: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        head = fh.read(HEADER.size)
        magic, _kind, _flags, id_len, _n, body_len, crc = HEADER.unpack(head)
        rest = fh.read(id_len + body_len)
    if magic != MAGIC or len(rest) != id_len + body_len:
        raise OSError(errno.EIO, f"spool record at {path}:{offset} is torn")
    if zlib.crc32(rest[id_len:], zlib.crc32(rest[:id_len])) != crc:
        raise OSError(errno.EIO, f"spool record at {path}:{offset} is corrupt")
    return rest[id_len:]


def read_acks(segment: str) -> set[int]:
    try:
        with open(segment + ACK_SUFFIX, "rb") as fh:
            lines = fh.read().split(b"\n")
    except FileNotFoundError:
        return set()
    return {int(line) for line in lines[:-1] if line.strip().isdigit()}


def append_ack(segment: str, offset: int) -> None:
    fd = os.open(segment + ACK_SUFFIX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"%d\n" % offset)
    finally:
        os.close(fd)


def list_segments(run_dir: str) -> list[str]:
    try:
        names = os.listdir(run_dir)
    except FileNotFoundError:
        return []
    return [os.path.join(run_dir, n) for n in sorted(names) if n.endswith(SEGMENT_SUFFIX)]


def read_meta(run_dir: str) -> dict | None:
    try:
        with open(os.path.join(run_dir, META_FILE), encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def write_meta(run_dir: str, meta: dict) -> None:
    """Replace ``run.json`` atomically."""
    path = os.path.join(run_dir, META_FILE)
    tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, ensure_ascii=False)
    os.replace(tmp, path)


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_segment(segment: str) -> None:
    remove_file(segment)
    remove_file(segment + ACK_SUFFIX)


def tree_bytes(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


class DirLock:
    """An exclusive, non-blocking ``flock`` on ``<run dir>/lock``, freed when the process dies."""

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, LOCK_FILE)
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor frees the flock
            self.fd = None


class _Segment:
    __slots__ = ("path", "size", "unacked", "sealed")

    def __init__(self, path: str, size: int, unacked: int, sealed: bool) -> None:
        self.path = path
        self.size = size
        self.unacked = unacked
        self.sealed = sealed


class RunSpool:
    """The spool directory of one run, as written by the live process (one sender thread)."""

    def __init__(self, root: str, run_id: str, max_bytes: int, segment_max_bytes: int) -> None:
        self.dir = os.path.join(root, run_id)
        self.root = root
        self.max_bytes = max_bytes
        self.segment_max_bytes = segment_max_bytes
        self.owner = False  # holds the lock: adopts earlier segments, may remove the dir
        self.forked_child = False
        self.bytes = 0
        self.other_bytes = 0
        self._segs: dict[str, _Segment] = {}
        self._fh = None
        self._current: _Segment | None = None
        self._lock = DirLock(self.dir)

    def open(self, meta: dict) -> list[Record]:
        """Create the directory, lock it, write ``run.json``; return the unacknowledged records
        that earlier (dead) processes left for this run. Raises ``OSError``."""
        os.makedirs(self.dir, exist_ok=True)
        self.owner = self._lock.acquire()
        if not self.forked_child:  # the parent owns run.json
            write_meta(self.dir, meta)
        adopted: list[Record] = []
        if self.owner:
            for path in list_segments(self.dir):
                acks = read_acks(path)
                recs = [r for r in iter_segment(path) if r.offset not in acks]
                size = os.path.getsize(path)
                self._segs[path] = _Segment(path, size, len(recs), sealed=True)
                self.bytes += size
                if not recs:
                    self._drop_segment(path)
                adopted.extend(recs)
        self.other_bytes = max(0, tree_bytes(self.root) - tree_bytes(self.dir))
        return adopted

    def append(self, kind: int, rid: str, n_points: int, body: bytes) -> Record:
        """Write a record (before it is sent). Raises ``SpoolFull`` or ``OSError``."""
        data = frame(kind, rid, n_points, body)
        if self.other_bytes + self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"the spool holds {self.other_bytes + self.bytes} bytes")
        seg = self._current
        if seg is None or seg.size >= self.segment_max_bytes:
            self.seal()
            path = os.path.join(
                self.dir, f"seg-{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:8]}.lls"
            )
            self._fh = open(path, "ab", buffering=0)
            seg = self._current = self._segs[path] = _Segment(path, 0, 0, sealed=False)
        offset = seg.size
        try:
            written = self._fh.write(data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write to the spool")
        except OSError:
            self._abandon_current(offset)
            raise
        seg.size += len(data)
        seg.unacked += 1
        self.bytes += len(data)
        return Record(kind, rid, n_points, body, seg.path, offset)

    def _abandon_current(self, offset: int) -> None:
        try:
            self._fh.truncate(offset)
        except OSError:
            pass
        self.seal()

    def seal(self) -> None:
        """Close the current segment; deleted at once if everything in it is acknowledged."""
        seg, self._current = self._current, None
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None
        if seg is not None:
            seg.sealed = True
            if seg.unacked <= 0:
                self._drop_segment(seg.path)

    def ack(self, record: Record) -> None:
        """Record that the server has ``record``; delete its segment once sealed and done."""
        seg = self._segs.get(record.segment or "")
        if seg is None:
            return
        append_ack(seg.path, record.offset)
        seg.unacked -= 1
        if seg.unacked <= 0 and seg.sealed:
            self._drop_segment(seg.path)

    def _drop_segment(self, path: str) -> None:
        seg = self._segs.pop(path, None)
        if seg is not None:
            self.bytes -= seg.size
        remove_segment(path)

    @property
    def unacked_segments(self) -> int:
        return sum(1 for s in self._segs.values() if s.unacked > 0)

    def update_meta(self, meta: dict) -> None:
        if not self.forked_child:
            write_meta(self.dir, meta)

    def close(self, remove: bool) -> bool:
        """Seal, and when ``remove`` (every record acknowledged, the run finished) delete the
        directory unless another process still writes there. Returns True if removed."""
        self.seal()
        removed = False
        if remove and self.owner and not self.forked_child and not self._segs:
            if not list_segments(self.dir):
                remove_file(os.path.join(self.dir, META_FILE))
                remove_file(os.path.join(self.dir, LOCK_FILE))
                try:
                    os.rmdir(self.dir)
                    removed = True
                except OSError:
                    pass
        if not self.forked_child:
            self._lock.release()
        return removed

    def after_fork_in_child(self) -> None:
        """A forked child writes its own segments and never touches the parent's."""
        if self._fh is not None:
            try:
                self._fh.close()  # the child's copy of the descriptor only
            except OSError:
                pass
        self._fh = None
        self._current = None
        self._segs = {}
        self.bytes = 0
        self.owner = False
        self.forked_child = True


def scan_run_dir(run_dir: str) -> tuple[dict | None, list[tuple[str, list[Record], set[int]]]]:
    """``run.json`` and, per segment, its complete records (bodies not loaded) and acks."""
    segs = []
    for path in list_segments(run_dir):
        segs.append((path, list(iter_segment(path)), read_acks(path)))
    return read_meta(run_dir), segs
