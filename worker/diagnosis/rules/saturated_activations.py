"""saturated_activations: sigmoid/tanh outputs pile up at their bounds.

Tips: seeds/002 and seeds/003 (saturating activations kill gradients). Needs
`act_sat_frac/<module>` (share of outputs within a margin of the bounds).
"""

from __future__ import annotations

from worker.diagnosis.findings import Finding, pct, step
from worker.diagnosis.rules._layers import stuck_high
from worker.diagnosis.series import RunData

KIND = "saturated_activations"
WINDOW_FRAC = 0.2  # judge the last 20% of the points so far
MIN_POINTS = 5  # per module
SATURATED = 0.5  # median saturated share over the window >= 50%...
NEVER_BELOW = 0.35  # ...and never below 35% in the window (healthy layers: < 30%)


def rule(run: RunData) -> list[Finding]:
    """One finding per saturating layer."""
    out = []
    for module, steps, med, low in stuck_high(run, "act_sat_frac/", WINDOW_FRAC, MIN_POINTS,
                                              SATURATED, NEVER_BELOW):
        title = (f"Saturated activations in `{module}`: {pct(med)} of its outputs sit at "
                 f"the bounds since step {step(steps[0])}")
        rec = (f"Use a ReLU-family activation in `{module}`, scale the inputs to mean 0 and "
               f"std 1, and use a variance-scaled (Xavier) init; lower the learning rate if "
               f"it saturated during training.")
        evidence = {"saturated_frac": med, "min_saturated_frac": low}
        out.append(Finding(KIND, "warning", int(steps[0]), int(steps[-1]), module, title, rec,
                           evidence))
    return out
