"""vanishing_gradients: early layers get gradients orders of magnitude below late ones.

Tips: seeds/001 (watch for vanishing gradients), seeds/003 (sigmoid makes early layers
stop learning). Needs `grad_norm/<module>` for two modules or more.
Each layer's gradient is read relative to its weights (`grad_norm/<m>` over
`weight_norm/<m>` when logged), so a layer with many parameters is not mistaken for a
layer with strong gradients. Exactly-zero gradients are left to dead_relu and
symmetric_init (units that output nothing, or weights that start at zero).
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.findings import Finding, num, step
from worker.diagnosis.rules._layers import names, recent
from worker.diagnosis.series import RunData

KIND = "vanishing_gradients"
WINDOW_FRAC = 0.25  # judge the last quarter of the points so far
MIN_POINTS = 5  # per module
MAX_ZERO_SHARE = 0.5  # a module whose gradient is exactly 0 this often is skipped
MAX_RATIO = 1e-3  # weakest / strongest relative gradient: three orders of magnitude


def measure(run: RunData) -> dict | None:
    """Median relative gradient per module over the recent window, or None."""
    grads = run.with_prefix("grad_norm/")
    weights = run.with_prefix("weight_norm/")
    med: dict[str, float] = {}
    first, last = None, None
    for module, s in grads.items():
        win = recent(s, WINDOW_FRAC, MIN_POINTS)
        if win is None:
            continue
        steps, g = win
        if np.mean(g == 0) > MAX_ZERO_SHARE:
            continue
        w = weights.get(module)
        if w is not None:
            wv = w.value_at(steps)
            rel = np.divide(g, wv, out=np.full_like(g, np.nan), where=wv > 0)
        else:
            rel = g
        rel = rel[np.isfinite(rel) & (rel > 0)]
        if rel.size >= MIN_POINTS:
            med[module] = float(np.median(rel))
            first = int(steps[0]) if first is None else min(first, int(steps[0]))
            last = int(steps[-1]) if last is None else max(last, int(steps[-1]))
    if len(med) < 2:
        return None
    weak = min(med, key=med.get)
    strong = max(med, key=med.get)
    return {"relative_gradient": med, "weakest": weak, "strongest": strong,
            "ratio": med[weak] / med[strong], "relative": bool(weights),
            "first_step": first, "last_step": last}


def rule(run: RunData) -> list[Finding]:
    """Fire when the weakest layer's gradient is 1000x below the strongest's."""
    m = measure(run)
    if m is None or m["ratio"] > MAX_RATIO:
        return []
    med = m["relative_gradient"]
    faint = [k for k, v in med.items() if v <= MAX_RATIO * med[m["strongest"]]]
    what = "relative gradient (grad/weight norm)" if m["relative"] else "gradient norm"
    title = (f"Vanishing gradients: {what} of `{m['weakest']}` is {num(m['ratio'])} of "
             f"`{m['strongest']}`'s since step {step(m['first_step'])}")
    rec = (f"Layers {names(faint)} barely learn: use ReLU-family activations instead of "
           f"sigmoid/tanh, add residual connections or batch norm, and a variance-scaled "
           f"(He/Xavier) init.")
    return [Finding(KIND, "warning", m["first_step"], m["last_step"], None, title, rec, m)]
