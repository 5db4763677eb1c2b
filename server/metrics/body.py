"""Reading and validating a points batch: size limits, gzip, columnar JSON."""

from __future__ import annotations

import json
import math
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
from fastapi import Request

from ..errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType, short
from ..validation import check_key
from .points import Points, sorted_unique

MAX_STEP = 2**63 - 1
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_BATCH_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")


@dataclass
class Batch:
    batch_id: str
    points: dict[str, Points] = field(default_factory=dict)
    dropped: int = 0

    @property
    def num_points(self) -> int:
        return sum(len(p) for p in self.points.values())


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 from Content-Length before reading, or once past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if size > limit:
            raise PayloadTooLarge(f"body of {size} bytes is over the limit of {limit} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_body(
    raw: bytes, content_type: str, content_encoding: str, max_decompressed: int
) -> object:
    """Decompress (gzip or identity) within ``max_decompressed`` bytes and parse JSON."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, max_decompressed)
            if inflater.unconsumed_tail:
                raise PayloadTooLarge(
                    f"body decompresses to more than the limit of {max_decompressed} bytes"
                )
            if not inflater.eof:
                raise BadRequest("gzip body is truncated")
        except zlib.error as exc:
            raise BadRequest(f"body is not valid gzip: {exc}") from None
    elif encoding not in ("", "identity"):
        raise UnsupportedMediaType(f"unsupported Content-Encoding {short(content_encoding)}")
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError:
        raise BadRequest("body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise Unprocessable(f"duplicate key {short(k)} in one JSON object")
            seen.add(k)
    return out


def parse_batch(doc: object, max_points: int, max_keys: int, now: float | None = None) -> Batch:
    """Validate a decoded batch; the first problem found is raised as a 4xx naming where it is."""
    if not isinstance(doc, dict):
        raise Unprocessable("body must be a JSON object with batch_id and points")
    unknown = set(doc) - {"batch_id", "points", "dropped"}
    if unknown:
        raise Unprocessable(f"unknown field {short(sorted(unknown)[0])}")
    batch_id = doc.get("batch_id")
    if (
        not isinstance(batch_id, str)
        or not 1 <= len(batch_id) <= 64
        or not set(batch_id) <= _BATCH_ID_CHARS
    ):
        raise Unprocessable("batch_id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    dropped = doc.get("dropped", 0)
    if type(dropped) is not int or not 0 <= dropped <= MAX_STEP:
        raise Unprocessable("dropped must be a non-negative integer")
    points = doc.get("points")
    if not isinstance(points, dict):
        raise Unprocessable("points must be an object mapping keys to {steps, values, wall}")
    if len(points) > max_keys:
        raise PayloadTooLarge(f"{len(points)} keys in one batch; the limit is {max_keys}")
    now = time.time() if now is None else now
    batch = Batch(batch_id, dropped=dropped)
    total = 0
    for key, col in points.items():
        check_key(key)
        pts = _parse_column(key, col, now)
        total += len(pts)
        if total > max_points:
            raise PayloadTooLarge(f"more than {max_points} points in one batch")
        if len(pts):
            batch.points[key] = pts
    return batch


def _parse_column(key: str, col: object, now: float) -> Points:
    where = f"points[{short(key)}]"
    if not isinstance(col, dict) or not {"steps", "values"} <= set(col) <= {
        "steps",
        "values",
        "wall",
    }:
        raise Unprocessable(f"{where} must be an object with steps, values and optional wall")
    steps, values, wall = col["steps"], col["values"], col.get("wall")
    if not isinstance(steps, list) or not isinstance(values, list):
        raise Unprocessable(f"{where}: steps and values must be arrays")
    if len(steps) != len(values) or (
        wall is not None and (not isinstance(wall, list) or len(wall) != len(steps))
    ):
        raise Unprocessable(f"{where}: steps, values and wall must be arrays of one length")
    if not steps:
        return Points.empty(with_walls=True)
    step_arr = _steps_array(where, steps)
    value_arr = _numbers_array(where, "values", values)
    wall_arr = np.full(len(steps), now) if wall is None else _numbers_array(where, "wall", wall)
    if wall is not None and not np.all(np.isfinite(wall_arr)):
        raise Unprocessable(f"{where}: wall times must be finite")
    # A step repeated inside one batch keeps its last value.
    return sorted_unique(Points(step_arr, value_arr, wall_arr))


def _steps_array(where: str, steps: list) -> np.ndarray:
    if not set(map(type, steps)) <= {int}:
        bad = next(x for x in steps if type(x) is not int)
        raise Unprocessable(f"{where}: step {short(bad)} is not an integer")
    try:
        arr = np.array(steps, dtype=np.int64)
    except OverflowError:
        raise Unprocessable(f"{where}: a step is beyond 64 bits (max {MAX_STEP})") from None
    if arr.min() < 0:
        raise Unprocessable(f"{where}: step {int(arr.min())} is negative")
    return arr


def _numbers_array(where: str, name: str, items: list) -> np.ndarray:
    types = set(map(type, items))
    if not types <= {int, float, str}:
        bad = next(x for x in items if type(x) not in (int, float, str))
        raise Unprocessable(f"{where}: {name} holds {short(bad)}, which is not a number")
    if str in types:
        try:
            items = [_NONFINITE[x] if type(x) is str else x for x in items]
        except KeyError as exc:
            raise Unprocessable(
                f'{where}: {name} holds the string {short(exc.args[0])}; only "NaN", '
                '"Infinity" and "-Infinity" are allowed'
            ) from None
    try:
        return np.array(items, dtype=np.float64)
    except OverflowError:
        raise Unprocessable(f"{where}: {name} holds an integer beyond float64 range") from None
