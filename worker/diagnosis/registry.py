"""Run every rule on a run, isolating a rule that raises."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from worker.diagnosis.findings import Finding
from worker.diagnosis.rules import RULES, Rule
from worker.diagnosis.series import RunData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleError:
    """A rule that raised instead of answering: its kind and the exception, as text."""

    kind: str
    error: str


def diagnose(run: RunData, *, rules: Mapping[str, Rule] | None = None,
             errors: list[RuleError] | None = None) -> list[Finding]:
    """All findings of `rules` (default: every rule in RULES) on `run`.

    A rule that raises is logged and skipped; the others still run. Pass a list as
    `errors` to receive one RuleError per failed rule.
    """
    findings: list[Finding] = []
    for kind, rule in (RULES if rules is None else rules).items():
        try:
            findings.extend(rule(run))
        except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the others
            log.exception("diagnosis rule %s failed", kind)
            if errors is not None:
                errors.append(RuleError(kind, f"{type(exc).__name__}: {exc}"))
    return findings
