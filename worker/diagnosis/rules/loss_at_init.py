"""loss_at_init: the first loss is far from -log(1/n_classes) for cross-entropy.

Tip: seeds/001 (verify the loss at init; initialise the last layer well, so the first
loss is -log(1/n_classes) and there is no "hockey stick"). Needs `config["n_classes"]` and
a loss logged at step 0 or 1 (one batch at init is enough: the test is a factor of 1.5);
silent when `config["loss"]` names a loss other than cross-entropy.
"""

from __future__ import annotations

import math

import numpy as np

from worker.diagnosis.findings import Finding, num
from worker.diagnosis.series import RunData

KIND = "loss_at_init"
CE_NAMES = ("cross_entropy", "crossentropy", "ce", "nll", "nll_loss", "log_loss",
            "categorical_crossentropy", "sparse_categorical_crossentropy", "bce",
            "binary_cross_entropy", "bce_with_logits")
MAX_START_STEP = 1  # the first loss must be logged at step 0 or 1: later, a high learning
#                     rate has already moved it
MAX_RATIO = 1.5  # far: more than 1.5x the expected value...
MIN_RATIO = 0.5  # ...or less than half of it
CRITICAL_RATIO = 5.0  # critical beyond 5x


def expected_init_loss(run: RunData) -> float | None:
    """ln(n_classes) when the config says a cross-entropy classifier of >= 2 classes (the
    loss of a sane init), else None."""
    try:
        n = int(run.config.get("n_classes"))
    except (TypeError, ValueError):
        return None
    name = str(run.config.get("loss", "cross_entropy")).lower().replace("-", "_")
    return math.log(n) if n >= 2 and name in CE_NAMES else None


def rule(run: RunData) -> list[Finding]:
    """Compare the first loss with ln(n_classes)."""
    expected = expected_init_loss(run)
    if expected is None:
        return []
    n = int(run.config["n_classes"])
    s = run.get("loss")
    if s is None or s.steps[0] > MAX_START_STEP:
        return []
    observed = float(s.values[0])
    if not np.isfinite(observed):
        return []
    ratio = observed / expected
    if MIN_RATIO <= ratio <= MAX_RATIO:
        return []
    severity = "critical" if ratio >= CRITICAL_RATIO else "warning"
    title = (f"First loss {num(observed)}, expected about {num(expected)} = ln({n}) for "
             f"{n} classes at initialisation")
    rec = ("Fix the final layer's initialisation: small weights (e.g. std 0.01) and the bias "
           "set to the log of the class priors (0 for balanced classes), so the first loss "
           f"is near {num(expected)}; check that the model outputs raw logits.")
    evidence = {"first_loss": observed, "expected": expected, "ratio": ratio, "n_classes": n}
    return [Finding(KIND, severity, int(s.steps[0]), int(s.steps[0]), None, title, rec,
                    evidence)]
