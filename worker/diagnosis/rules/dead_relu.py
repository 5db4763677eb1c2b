"""dead_relu: most outputs of a ReLU layer are exactly zero, and it does not recover.

Tips: seeds/001 and seeds/002 (too high a learning rate kills ReLUs, irreversibly).
Needs `act_zero_frac/<module>`. Healthy ReLU layers output zero for about half their
inputs; here nearly all outputs are zero throughout the recent window.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.findings import Finding, lr_advice, pct, step
from worker.diagnosis.rules._layers import stuck_high
from worker.diagnosis.series import RunData

KIND = "dead_relu"
WINDOW_FRAC = 0.2  # judge the last 20% of the points so far
MIN_POINTS = 5  # per module
DEAD = 0.9  # median zero fraction over the window >= 90%...
NEVER_BELOW = 0.8  # ...and it never dropped below 80% in the window (no recovery)


def rule(run: RunData) -> list[Finding]:
    """One finding per ReLU layer that is (almost) all zeros."""
    out = []
    for module, steps, med, low in stuck_high(run, "act_zero_frac/", WINDOW_FRAC, MIN_POINTS,
                                              DEAD, NEVER_BELOW):
        all_steps, all_v = run.series[f"act_zero_frac/{module}"].finite_points()
        since = int(all_steps[np.flatnonzero(all_v < NEVER_BELOW)[-1] + 1]) \
            if (all_v < NEVER_BELOW).any() else int(all_steps[0])
        title = (f"Dead ReLUs in `{module}`: {pct(med)} of its outputs are exactly zero "
                 f"since step {step(since)}")
        rec = (f"{lr_advice(run, 0.3, 'Lower')}; use LeakyReLU or PReLU in `{module}`; "
               f"restart from a checkpoint before step {step(since)} (dead units do not "
               f"recover).")
        evidence = {"zero_frac": med, "min_zero_frac": low, "since_step": since,
                    "window_start": int(steps[0])}
        out.append(Finding(KIND, "warning", since, int(steps[-1]), module, title, rec, evidence))
    return out
