"""Losslens diagnosis: the rules of RULES.md as pure functions over NumPy arrays.

    from worker.diagnosis import RunData, SeriesData, diagnose
    run = RunData({"loss": SeriesData(steps, values)}, config={"n_classes": 10})
    errors = []
    for finding in diagnose(run, errors=errors):
        print(finding.kind, finding.severity, finding.title)

No I/O here: the worker task loads the series and stores the findings.
"""

from __future__ import annotations

from worker.diagnosis.findings import SEVERITIES, Finding, Severity
from worker.diagnosis.registry import RuleError, diagnose
from worker.diagnosis.rules import CURVE_KINDS, LAYER_KINDS, RULES, Rule
from worker.diagnosis.series import Buckets, RunData, SeriesData

__all__ = [
    "CURVE_KINDS", "LAYER_KINDS", "RULES", "SEVERITIES", "Buckets", "Finding", "Rule",
    "RuleError", "RunData", "SeriesData", "Severity", "diagnose",
]
