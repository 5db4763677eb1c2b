"""nan_loss: the loss or a gradient norm is NaN or +-Inf.

Tips: seeds/004 (a net whose inputs turned NaN at the 2nd iteration, hidden by batch norm),
seeds/001 (custom layers need an epsilon in divisions and logs).
Every raw point is checked, not a downsampled view.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis.findings import Finding, lr_advice, num, step
from worker.diagnosis.series import RunData, SeriesData

KIND = "nan_loss"
# Under mixed precision a gradient scaler skips steps whose gradients overflowed; that is
# normal if rare. With an AMP config, gradient overflows on at most this share of steps
# (and a finite loss) are not reported.
AMP_OVERFLOW_SHARE = 0.05
AMP_KEYS = ("amp", "fp16", "bf16", "mixed_precision")


def _first_bad(s: SeriesData) -> tuple[int, int] | None:
    bad = ~s.finite
    if not bad.any():
        return None
    return int(s.steps[np.argmax(bad)]), int(bad.sum())


def _grad_overflows(run: RunData) -> tuple[int, int, int, str] | None:
    """(first step, overflow count, points, key) over the gradient keys, or None."""
    keys = [k for k in run.series if k == "grad_norm" or k.startswith("grad_norm/")]
    first: tuple[int, int, int, str] | None = None
    for key in keys:
        s = run.series[key]
        hit = _first_bad(s)
        if hit and (first is None or hit[0] < first[0]):
            first = (hit[0], hit[1], len(s), key)
    flag = run.get("grad_nonfinite")
    if flag is not None:
        on = flag.values == 1.0
        if on.any():
            at = int(flag.steps[np.argmax(on)])
            if first is None or at < first[0]:
                first = (at, int(on.sum()), len(flag), "grad_nonfinite")
    return first


def _with_input_note(run: RunData, before: int, advice: str) -> str:
    """`advice`, after a note on the input batch when that was non-finite first."""
    for key in ("input/mean", "input/std"):
        s = run.get(key)
        if s is not None:
            bad = ~s.finite & (s.steps <= before)
            if bad.any():
                return (f"The input batch itself was non-finite at step "
                        f"{step(s.steps[np.argmax(bad)])}: check the data for NaN first. "
                        f"Then: {advice[0].lower()}{advice[1:]}")
    return advice


def rule(run: RunData) -> list[Finding]:
    """Report the first non-finite loss, else the first non-finite gradient norm."""
    loss = run.get("loss")
    loss_hit = _first_bad(loss) if loss is not None else None
    grad_hit = _grad_overflows(run)
    if loss_hit is None and grad_hit is None:
        return []
    if loss_hit is None:
        amp = any(bool(run.config.get(k)) for k in AMP_KEYS)
        if amp and grad_hit[1] <= AMP_OVERFLOW_SHARE * grad_hit[2]:
            return []
    last = run.last_step if run.last_step is not None else 0
    advice = (f"Stop the run and restart from a checkpoint before the first bad step: "
              f"{lr_advice(run, 0.1, 'lower')}, clip gradients (clip_grad_norm_ with "
              f"max_norm=1.0), check input scaling, and add an epsilon to logs and "
              f"divisions in custom layers.")
    if loss_hit is not None:
        at, count = loss_hit
        steps, values = loss.finite_points()
        before = values[steps < at]
        evidence = {"first_step": at, "nonfinite_points": count, "points": len(loss),
                    "last_finite_loss": float(before[-1]) if before.size else None}
        title = (f"Loss became {num(float(loss.values[np.searchsorted(loss.steps, at)]))} "
                 f"at step {step(at)} ({count:,} of {len(loss):,} points non-finite)")
        if grad_hit is not None:
            evidence.update(first_gradient_step=grad_hit[0], gradient_key=grad_hit[3])
        return [Finding(KIND, "critical", at, last, None, title,
                        _with_input_note(run, at, advice), evidence)]
    at, count, points, key = grad_hit
    title = f"Gradient norm `{key}` became non-finite at step {step(at)} ({count:,} points)"
    evidence = {"first_step": at, "nonfinite_points": count, "points": points, "key": key}
    return [Finding(KIND, "warning", at, last, None, title, _with_input_note(run, at, advice),
                    evidence)]
