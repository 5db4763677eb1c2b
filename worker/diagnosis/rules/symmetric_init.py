"""symmetric_init: a layer's weights start all equal (zero), so its units learn alike.

Tip: seeds/002 (never initialise all weights to zero: every unit gets the same gradient
and they never differ). Needs `weight_norm/<module>` from the first steps: a weight norm
of 0 at the start means every weight and bias is 0.
One zero layer between random ones is harmless (a zero-initialised output layer is even
common practice): the random layers break the symmetry. The trap is two zero layers or
more, or a zero layer that never receives a gradient.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.findings import Finding, num, step
from worker.diagnosis.series import RunData

KIND = "symmetric_init"
MAX_START_STEP = 10  # the first weight norm must be logged by step 10 (else init is gone)
ZERO = 1e-12  # a weight norm below this is zero
TINY_OF_OTHERS = 1e-6  # or below this share of the median of the other layers' first norms
MIN_ZERO_LAYERS = 2  # zero layers needed, unless a zero layer never gets a gradient


def rule(run: RunData) -> list[Finding]:
    """One finding per layer whose weight norm starts at (about) zero."""
    firsts = {}
    for module, s in run.with_prefix("weight_norm/").items():
        if s.steps[0] <= MAX_START_STEP and np.isfinite(s.values[0]):
            firsts[module] = (int(s.steps[0]), float(s.values[0]))
    if not firsts:
        return []
    zero = {}
    for module, (_, w0) in firsts.items():
        others = [w for m, (_, w) in firsts.items() if m != module and w > ZERO]
        if w0 <= ZERO or (others and w0 <= TINY_OF_OTHERS * float(np.median(others))):
            g = run.get(f"grad_norm/{module}")
            zero[module] = g is not None and bool(np.all(g.values[g.finite] == 0))
    out = []
    for module, stuck in zero.items():
        if len(zero) < MIN_ZERO_LAYERS and not stuck:
            continue
        at, w0 = firsts[module]
        title = (f"`{module}` starts with all weights zero (weight norm {num(w0)} at step "
                 f"{step(at)})" + ("; it has never received a gradient" if stuck else ""))
        rec = (f"Initialise `{module}` with a variance-scaled init (He for ReLU, Xavier for "
               f"tanh/sigmoid; PyTorch's default also works), never all zeros.")
        evidence = {"first_weight_norm": w0, "step": at, "never_updated": stuck}
        last = run.get(f"weight_norm/{module}").steps[-1]
        out.append(Finding(KIND, "critical" if stuck else "warning", at, int(last), module,
                           title, rec, evidence))
    return out
