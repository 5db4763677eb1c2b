"""Turn queued ``log()`` calls into the columnar, gzipped JSON batches of docs/api.md."""

from __future__ import annotations

import json
import math
import re
import uuid
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

#: one queued ``log()`` call: (step, wall time, {key: value})
Entry = tuple[int, float, dict]
#: key -> (steps, values, walls)
Columns = dict

MAX_KEYS_PER_BATCH = 10_000
_NONFINITE = re.compile(r"-?Infinity|NaN")
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode
_dumps_strict = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def new_batch_id() -> str:
    return uuid.uuid4().hex


def build_columns(
    entries: Iterable[Entry], max_points: int, max_keys: int = MAX_KEYS_PER_BATCH
) -> Iterator[tuple[Columns, int]]:
    """Group entries into batches of at most ``max_points`` points and ``max_keys`` keys.

    Yields ``(columns, n_points)``; one ``log()`` call may span two batches.
    """
    cols: Columns = {}
    n = 0
    for step, wall, data in entries:
        for key, value in data.items():
            col = cols.get(key)
            if col is None:
                if len(cols) >= max_keys:
                    yield cols, n
                    cols, n = {}, 0
                col = cols[key] = ([], [], [])
            col[0].append(step)
            col[1].append(value)
            col[2].append(wall)
            n += 1
        if n >= max_points:
            yield cols, n
            cols, n = {}, 0
    if n:
        yield cols, n


def _as_float(value: Any) -> float:
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def encode_values(values: list[Any]) -> str:
    """A JSON array of float64 values, NaN and infinities as strings."""
    if int in set(map(type, values)):
        values = [_as_float(v) for v in values]
    text = _dumps(values)
    if "N" in text or "I" in text:
        text = _NONFINITE.sub(r'"\g<0>"', text)
    return text


class _ReprCache(dict):
    """float -> its JSON text, computed once per distinct wall time of a batch (the keys of
    one ``log()`` call share it)."""

    def __missing__(self, value: float) -> str:
        text = self[value] = _dumps(value)
        return text


def encode_points(batch_id: str, cols: Columns, dropped: int = 0) -> bytes:
    """The JSON body (UTF-8, not yet compressed) of ``POST /runs/{id}/points``."""
    wall_text = _ReprCache().__getitem__
    parts = [
        f'{_dumps(key)}:{{"steps":{_dumps(steps)},"values":{encode_values(values)},'
        f'"wall":[{",".join(map(wall_text, walls))}]}}'
        for key, (steps, values, walls) in cols.items()
    ]
    head = f'{{"batch_id":{_dumps(batch_id)},"dropped":{int(dropped)},"points":{{'

    return (head + ",".join(parts) + "}}").encode("utf-8")


def gzip_bytes(raw: bytes, level: int = 1) -> bytes:
    """Gzip ``raw`` (``Content-Encoding: gzip``); zlib releases the GIL while compressing."""
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    return comp.compress(raw) + comp.flush()


def gunzip_bytes(data: bytes) -> bytes:
    return zlib.decompress(data, 47)


def json_safe(obj: Any, _depth: int = 0) -> Any:
    """A JSON-ready copy of a config or findings value: non-finite floats become strings,
    tuples and sets lists, numpy scalars numbers, anything else its ``str()``."""
    if _depth > 64:
        return str(obj)
    if obj is None or type(obj) in (bool, str, int):
        return obj
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return float(obj)
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {str(k): json_safe(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v, _depth + 1) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():
        try:
            return json_safe(obj.item(), _depth + 1)
        except Exception:  # noqa: BLE001 - fall back to str() below
            pass
    return str(obj)


def dumps_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON of an already :func:`json_safe` value."""
    return _dumps_strict(obj).encode("utf-8")
