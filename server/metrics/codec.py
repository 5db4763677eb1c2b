"""Binary encoding of a chunk's columns.

Each column is one codec byte followed by its payload:

- steps: a contiguous range as (first, count); otherwise int64 deltas (first value, then
  differences), zlib;
- values: float64 with the bytes of each position grouped together (a byte shuffle), zlib,
  kept only when that saves a quarter or more (constant or smooth curves such as a learning
  rate); a noisy loss saves ~18% only, and decoding it would cost more time than the bytes
  are worth, so it stays raw. Every bit pattern (NaN, ±Inf, -0.0) comes back exactly;
- wall times: int64 microseconds as deltas, zlib.
"""

from __future__ import annotations

import zlib

import numpy as np

RAW = 0
ZLIB = 1
_LEVEL = 1  # fast: ingest writes one chunk per key per batch

_I8 = np.dtype("<i8")
_F8 = np.dtype("<f8")


def _pack(payload: bytes, keep_ratio: float = 1.0) -> bytes:
    packed = zlib.compress(payload, _LEVEL)
    if len(packed) < keep_ratio * len(payload):
        return bytes([ZLIB]) + packed
    return bytes([RAW]) + payload


def _unpack(blob: bytes) -> bytes:
    if not blob:
        return b""
    codec, payload = blob[0], memoryview(blob)[1:]
    if codec == ZLIB:
        return zlib.decompress(payload)
    if codec == RAW:
        return bytes(payload)
    raise ValueError(f"unknown chunk codec {codec}")


RANGE = 3


def encode_steps(steps: np.ndarray) -> bytes:
    steps = steps.astype(_I8, copy=False)
    if len(steps) > 1 and steps[-1] - steps[0] == len(steps) - 1 and np.all(np.diff(steps) == 1):
        # Logged every step: no need to store (or inflate, at read time) a million deltas.
        return bytes([RANGE]) + np.array([steps[0], len(steps)], dtype=_I8).tobytes()
    deltas = np.diff(steps, prepend=np.int64(0))
    return _pack(deltas.tobytes())


def decode_steps(blob: bytes) -> np.ndarray:
    if blob and blob[0] == RANGE:
        first, count = np.frombuffer(blob, dtype=_I8, offset=1)
        return np.arange(first, first + count, dtype=np.int64)
    return np.cumsum(np.frombuffer(_unpack(blob), dtype=_I8), dtype=np.int64)


SHUFFLED_ZLIB = 2
_VALUES_KEEP_RATIO = 0.75


def encode_values(values: np.ndarray) -> bytes:
    raw = np.ascontiguousarray(values, dtype=_F8)
    packed = zlib.compress(raw.view(np.uint8).reshape(-1, 8).T.tobytes(), _LEVEL)
    if len(packed) < _VALUES_KEEP_RATIO * raw.nbytes:
        return bytes([SHUFFLED_ZLIB]) + packed
    return bytes([RAW]) + raw.tobytes()


def decode_values(blob: bytes) -> np.ndarray:
    if blob and blob[0] == SHUFFLED_ZLIB:
        shuffled = np.frombuffer(zlib.decompress(memoryview(blob)[1:]), dtype=np.uint8)
        return shuffled.reshape(8, -1).T.copy().view(_F8).reshape(-1).astype(np.float64)
    return np.frombuffer(_unpack(blob), dtype=_F8).astype(np.float64)


def encode_walls(walls: np.ndarray) -> bytes:
    micros = np.round(np.asarray(walls, dtype=np.float64) * 1e6).astype(_I8)
    return _pack(np.diff(micros, prepend=np.int64(0)).tobytes())


def decode_walls(blob: bytes) -> np.ndarray:
    micros = np.cumsum(np.frombuffer(_unpack(blob), dtype=_I8), dtype=np.int64)
    return micros / 1e6
