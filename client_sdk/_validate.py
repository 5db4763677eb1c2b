"""The slow paths of ``log()``: key, value and step checks that name what is wrong.

``Run.log`` only calls these for keys it has not seen yet and for values that are not exactly
``float`` or ``int``, so a training loop pays for them once per key.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any

MAX_KEY_CHARS = 250
MAX_STEP = 2**63  # exclusive
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NOT_NUMBERS = (str, bytes, bytearray, list, tuple, dict, set, type(None))


def _short(obj: Any, limit: int = 60) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_key(key: Any) -> str:
    """Return ``key`` if it is a valid metric key; raise ``TypeError``/``ValueError`` naming it."""
    if not isinstance(key, str):
        raise TypeError(f"metric key {_short(key)} must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("metric key '' is empty; keys are 1-250 characters")
    if len(key) > MAX_KEY_CHARS:
        raise ValueError(
            f"metric key {_short(key)} is {len(key)} characters long; the limit is 250"
        )
    if _CONTROL.search(key):
        raise ValueError(f"metric key {key!r} contains a control character")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"metric key {key!r} contains a lone surrogate") from None
    return key


def check_keys(data: Mapping[Any, Any], known: set) -> None:
    """Check every key of ``data`` not in ``known`` and add it there."""
    for key in data:
        if key not in known:
            known.add(check_key(key))


def _is_bool(value: Any) -> bool:
    # bool and numpy.bool_ (named "bool" in numpy 2): a flag is not a measurement
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool")


def coerce_value(key: str, value: Any) -> Any:
    """Return ``value`` as ``int`` or ``float`` (numpy scalars, 0-d tensors, anything with
    ``__float__``), or raise ``TypeError`` naming the key."""
    tp = type(value)
    if tp is float or tp is int:
        return value
    if _is_bool(value):
        raise TypeError(
            f"metric {key!r} is a bool ({value!r}); log a number, e.g. float({value!r})"
        )
    if isinstance(value, _NOT_NUMBERS) or getattr(tp, "__float__", None) is None:
        raise TypeError(
            f"metric {key!r} must be a number, got {tp.__name__} {_short(value)}"
        )
    shape = getattr(value, "shape", ())
    try:
        is_scalar = tuple(shape) == ()
    except TypeError:
        is_scalar = True
    if not is_scalar:
        raise TypeError(
            f"metric {key!r} must be a scalar, got {tp.__name__} of shape {tuple(shape)}; "
            "log value.item() or a reduction of it"
        )
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
        raise TypeError(f"metric {key!r}: cannot convert {tp.__name__} to float ({exc})") from None


def coerce_values(data: dict) -> dict:
    """``data`` with every value coerced by :func:`coerce_value` (a new dict)."""
    return {k: coerce_value(k, v) for k, v in data.items()}


def check_step(step: Any) -> int:
    """Return ``step`` as an int in ``[0, 2**63)`` or raise ``TypeError``/``ValueError``."""
    if type(step) is not int:
        if _is_bool(step) or isinstance(step, float):
            raise TypeError(f"step must be an int, not {type(step).__name__} {step!r}")
        try:
            step = operator.index(step)
        except TypeError:
            raise TypeError(f"step must be an int, not {type(step).__name__}") from None
    if not 0 <= step < MAX_STEP:
        raise ValueError(f"step {step} is out of range: 0 <= step < 2**63")
    return step
