"""unscaled_inputs: the input batch's mean and std are far from 0 and 1.

Tips: seeds/001, seeds/002, seeds/004 (centre and scale inputs with the training set's
statistics; apply the same to validation and test). Needs `input/mean` and/or
`input/std` (float inputs; token ids are not features).
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.findings import Finding, num
from worker.diagnosis.series import RunData

KIND = "unscaled_inputs"
MIN_POINTS = 3  # input statistics points needed
MAX_ABS_MEAN = 10.0  # |mean| beyond 10 (ten standard units off centre)...
MAX_STD = 10.0  # ...or std beyond 10...
MIN_STD = 1e-2  # ...or a (non-zero) std below 0.01


def _median(run: RunData, key: str) -> tuple[float, int, int] | None:
    s = run.get(key)
    if s is None:
        return None
    steps, v = s.finite_points()
    if v.size < MIN_POINTS:
        return None
    return float(np.median(v)), int(steps[0]), int(steps[-1])


def rule(run: RunData) -> list[Finding]:
    """Fire when the typical input batch is far from mean 0, std 1."""
    mean, std = _median(run, "input/mean"), _median(run, "input/std")
    if mean is None and std is None:
        return []
    bad = []
    if mean is not None and abs(mean[0]) > MAX_ABS_MEAN:
        bad.append(f"mean {num(mean[0])}")
    if std is not None and (std[0] > MAX_STD or 0 < std[0] < MIN_STD):
        bad.append(f"std {num(std[0])}")
    if not bad:
        return []
    first = min(x[1] for x in (mean, std) if x is not None)
    last = max(x[2] for x in (mean, std) if x is not None)
    mu = num(mean[0]) if mean is not None else "the training mean"
    sd = num(std[0]) if std is not None else "the training std"
    title = f"Inputs are not normalised: {' and '.join(bad)} (expected about 0 and 1)"
    rec = (f"Normalise the inputs per feature with the training set's statistics (here "
           f"roughly x = (x - {mu}) / {sd}) and apply the same to validation and test data.")
    evidence = {"input_mean": mean[0] if mean else None, "input_std": std[0] if std else None,
                "since_step": first}
    return [Finding(KIND, "warning", first, last, "input", title, rec, evidence)]
