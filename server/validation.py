"""Checks on user-supplied names shared by the API's schemas and the points parser."""

from __future__ import annotations

from .errors import Unprocessable, short

MAX_KEY_LENGTH = 250


def bad_text_reason(text: str, max_length: int) -> str | None:
    """Why ``text`` is not acceptable as a name or key, or None when it is."""
    if not text:
        return "is empty"
    if len(text) > max_length:
        return f"is {len(text)} characters long; the limit is {max_length}"
    if any(c < " " or "\x7f" <= c < "\xa0" for c in text):
        return "holds a control character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate"
    return None


def check_key(key: object) -> None:
    if not isinstance(key, str):
        raise Unprocessable(f"key {short(key)} is not a string")
    reason = bad_text_reason(key, MAX_KEY_LENGTH)
    if reason:
        raise Unprocessable(f"key {short(key)} {reason}")
