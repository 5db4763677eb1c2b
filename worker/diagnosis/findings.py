"""What a rule reports: `Finding`, and the helpers that keep titles and evidence readable."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from worker.diagnosis.series import RunData

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


def clean(value: Any) -> Any:
    """A JSON-able copy of `value`: NumPy scalars to Python, NaN/Inf to None, floats rounded."""
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return float(f"{f:.6g}") if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


@dataclass
class Finding:
    """One diagnosis of a run.

    `kind` is a rule name of RULES.md, `subject` the key or layer it is about (None for the
    run as a whole), `step_start`/`step_end` the steps it covers, `evidence` the numbers the
    rule saw (plain JSON: no NaN), `title` one line with those numbers, `recommendation` what
    to try, concretely.
    """

    kind: str
    severity: Severity
    step_start: int | None
    step_end: int | None
    subject: str | None
    title: str
    recommendation: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        self.evidence = clean(self.evidence)
        self.step_start = None if self.step_start is None else int(self.step_start)
        self.step_end = None if self.step_end is None else int(self.step_end)

    def to_dict(self) -> dict[str, Any]:
        """The finding as a plain JSON-able dict."""
        return {"kind": self.kind, "severity": self.severity, "step_start": self.step_start,
                "step_end": self.step_end, "subject": self.subject, "title": self.title,
                "recommendation": self.recommendation, "evidence": self.evidence}


def num(x: float | None, digits: int = 3) -> str:
    """A number for a title: 3 significant digits, `1.2e-4` style when tiny or huge."""
    if x is None:
        return "None"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        mant, exp = f"{x:.{digits - 1}e}".split("e")
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    text = f"{x:.{digits}g}"
    if "e" in text:  # 12345 at 3 digits: 1.23e+04
        mant, exp = text.split("e")
        return f"{mant}e{int(exp)}"
    return text


def step(s: int | float) -> str:
    """A step with thousands separators: 4,200."""
    return f"{int(s):,}"


def pct(x: float) -> str:
    """A fraction as a percentage: 0.934 -> 93%."""
    return f"{100.0 * x:.0f}%"


def current_lr(run: RunData) -> float | None:
    """The learning rate now: the last finite logged `lr`, else `config["lr"]`, else None."""
    s = run.get("lr")
    if s is not None:
        steps, values = s.finite_points()
        if values.size and values[-1] > 0:
            return float(values[-1])
    lr = run.config.get("lr")
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        return None
    return lr if math.isfinite(lr) and lr > 0 else None


def lr_advice(run: RunData, factor: float, verb: str) -> str:
    """'lower the learning rate from 0.1 to about 0.01' (or without numbers when unknown)."""
    lr = current_lr(run)
    if lr is None:
        return f"{verb} the learning rate about {num(max(factor, 1 / factor), 2)}x"
    return f"{verb} the learning rate from {num(lr)} to about {num(lr * factor, 2)}"
