"""Column types shared by the models."""

from __future__ import annotations

import math

from sqlalchemy.types import String, TypeDecorator


class ExactFloat(TypeDecorator):
    """A float64 stored as its shortest exact text (``repr``).

    SQLite turns a REAL NaN into NULL; text keeps NaN and ±Inf exact on every backend.
    """

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = float(value)
        if math.isnan(value):
            return "nan"
        return repr(value)

    def process_result_value(self, value, dialect):
        return None if value is None else float(value)
