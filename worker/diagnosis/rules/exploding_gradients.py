"""exploding_gradients: the gradient norm grows by orders of magnitude, or spikes.

Tip: seeds/001 (clip gradients when they explode, especially in NLP). Needs `grad_norm`
(or `grad_norm/<module>`). Both tests compare with the run's own early gradient norm
(healthy training shrinks gradients, so a norm far above the early one is abnormal):
growth is the recent level against it; a spike is any single point against it and
against its own bucket's median (so every point is checked, not a downsampled view).
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.findings import Finding, num, step
from worker.diagnosis.rules._layers import early, recent
from worker.diagnosis.series import RunData

KIND = "exploding_gradients"
MIN_POINTS = 10  # gradient-norm points needed
N_BUCKETS = 50  # buckets for the local reference of the spike test...
BUCKET_POINTS = 5  # ...of 5 points at least, so one spike cannot move their median
EARLY_FRAC = 0.02  # the early reference: median over the first 2% of the points...
EARLY_POINTS = 5  # ...and at least 5 (near init, before a fast run has converged)
WINDOW_FRAC = 0.1  # the recent window
GROWTH = 30.0  # recent level >= 30x the early level
SPIKE = 20.0  # one point >= 20x both the early level and its bucket's median
CRITICAL = 1e4  # critical beyond this factor


def _series(run: RunData):
    s = run.get("grad_norm")
    if s is not None:
        return {"grad_norm": s}
    return {f"grad_norm/{k}": v for k, v in run.with_prefix("grad_norm/").items()}


def measure(run: RunData) -> dict | None:
    """Worst growth and worst spike over the gradient series, or None."""
    best = None
    for key, s in _series(run).items():
        steps, v = s.finite_points()
        if v.size < MIN_POINTS:
            continue
        ref = float(np.median(early(s, EARLY_FRAC, EARLY_POINTS)[1]))
        if ref <= 0:
            continue
        b = s.buckets(N_BUCKETS, BUCKET_POINTS)
        local = np.maximum(np.repeat(b.median, b.count), ref)
        ratio = v / local
        i = int(np.argmax(ratio))
        win = recent(s, WINDOW_FRAC, 3)
        now = float(np.median(win[1]))
        m = {"key": key, "early_level": ref, "level_now": now, "growth": now / ref,
             "spike": float(ratio[i]), "spike_step": int(steps[i]), "spike_value": float(v[i]),
             "window_start": int(win[0][0]), "last_step": int(steps[-1])}
        if best is None or max(m["spike"], m["growth"]) > max(best["spike"], best["growth"]):
            best = m
    return best


def rule(run: RunData) -> list[Finding]:
    """Fire on 30x growth of the level or a 20x spike."""
    m = measure(run)
    if m is None or (m["growth"] < GROWTH and m["spike"] < SPIKE):
        return []
    factor = max(m["growth"], m["spike"])
    severity = "critical" if factor >= CRITICAL else "warning"
    if m["growth"] >= GROWTH:
        title = (f"Exploding gradients: `{m['key']}` now {num(m['level_now'])}, "
                 f"{num(m['growth'])}x its early level {num(m['early_level'])}")
        at = m["window_start"]
    else:
        title = (f"Gradient spike: `{m['key']}` hit {num(m['spike_value'])} at step "
                 f"{step(m['spike_step'])}, {num(m['spike'])}x its typical level")
        at = m["spike_step"]
    clip = 2.0 * m["early_level"]
    rec = (f"Clip gradients (torch.nn.utils.clip_grad_norm_ with max_norm about {num(clip, 2)}, "
           f"twice the early norm); lower the learning rate; check input scaling.")
    return [Finding(KIND, severity, at, m["last_step"], None, title, rec, m)]
