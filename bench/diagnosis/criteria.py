"""Label criteria: what a run must SHOW for a kind to be labelled on it.

A recipe says what a run was meant to show (its fault); these written criteria check what
the recorded run actually shows, the same way on every run (healthy and faulty, every
draw), from the recorded signals only. They were chosen from the tips (seeds/002, 003:
"validation loss rises while training loss falls"; seeds/001: "orders of magnitude";
RULES.md: "loss or gradient is NaN/Inf"), not from the rules' thresholds, and a gray zone
between a clear yes and a clear no is left unscored (`may`).

How a verdict changes a label (`apply`):
- criterion met: the kind becomes `must`, unless the run's fault lists it as a `may`
  (a side effect the fault legitimately causes: kept unscored);
- gray zone: the kind becomes `may` (unscored), a `must` included (the fault did not
  clearly show);
- criterion not met on a run that has the kind as `must`: demoted to `may` (the injected
  fault did not show on this seed) and reported by generate.py.

The criteria:

overfitting (seeds/002, 003): with the validation loss smoothed by a running median of 3
evaluations, best = its minimum. Positive when >= OVERFIT_EVALS_AFTER evaluations follow
the best one, the lowest of the last 3 raw evaluations is >= RISE_YES (20%) above the best
(a rise sustained, not one bump: 20% is about 4x the evaluation-to-evaluation noise of the
smallest validation sets here), and the training loss kept falling (median of its last 5%
of points <= TRAIN_FALL x its median around the best step). Gray when that sustained rise
is RISE_NO..RISE_YES (10-20%) with training falling. Else negative.

early_stopping_point (seeds/003): the same sustained rise after the best evaluation,
whatever training did (the advice, keep the best checkpoint, holds either way).

nan_loss (RULES.md): a non-finite `loss`, `grad_norm*` or `grad_nonfinite` = 1 recorded.
Positive if so, negative otherwise (nothing gray).

exploding_gradients (seeds/001, "explode" = orders of magnitude), a check of the
injection only (on runs whose recipe labels it `must`; it never adds the kind: a gradient
norm that grows from a tiny value at init, as in recurrent nets, is not a fault): after the
labelled onset, a recorded `grad_norm` point >= EXPLODE_YES (100x) the median before the
onset. Gray from EXPLODE_NO (10x). The corrupt batches are every 7th, the layer signals
every 10th step: a net that dies at its first corrupt batch shows nothing.

early_plateau (seeds/002: "a fast drop, then stuck in a poor minimum, far above what the
model reached elsewhere"), a check of the injection only (it never adds the kind): the
run's final training level (median of its last FINAL_SHARE of loss points) against the
same level of the draw's healthy runs on the same data set (their median): >= PLATEAU_YES
(1.3x) is a plateau, under PLATEAU_NO (1.15x) the run reached what healthy runs reach (the
fault did not show), gray between. 1.15x is about twice the spread of the healthy runs'
final levels between seeds here.

dead_relu (RULES.md: "a large fraction of a ReLU layer's outputs are exactly zero ... and it
does not recover"), a check of the injection only: some `act_zero_frac/<layer>` stays >=
DEAD_YES (90%) for >= DEAD_RECORDS (5) consecutive records. Gray when it reached 90% but
never held it (e.g. the net went to NaN first: NaN activations are not zeros, and nan_loss
is then what the run shows); no when it never reached it.
"""

from __future__ import annotations

import numpy as np

from worker.diagnosis import RunData

RISE_YES = 0.20
RISE_NO = 0.10
OVERFIT_EVALS_AFTER = 3
MIN_EVALS = 6
TRAIN_FALL = 0.9
EXPLODE_YES = 100.0
EXPLODE_NO = 10.0
PLATEAU_YES = 1.3
PLATEAU_NO = 1.15
FINAL_SHARE = 0.2
DEAD_YES = 0.9
DEAD_RECORDS = 5
# criteria that check an injection, never add a kind
CHECK_ONLY = ("exploding_gradients", "early_plateau", "dead_relu")


def _val_rise(run: RunData) -> tuple[float, int, int] | None:
    """(sustained rise over the best, evaluations after the best, best step) or None."""
    v = run.get("val/loss")
    if v is None:
        return None
    steps, y = v.finite_points()
    if y.size < MIN_EVALS:
        return None
    padded = np.concatenate([y[:1], y, y[-1:]])
    smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    i = int(np.argmin(smooth))
    best = float(smooth[i])
    if best <= 0:
        return None
    return (float(y[-3:].min()) - best) / best, y.size - 1 - i, int(steps[i])


def _loss_points(run: RunData) -> tuple[np.ndarray, np.ndarray] | None:
    """The finite training-loss points, or None when fewer than 10."""
    s = run.get("loss")
    if s is None:
        return None
    steps, y = s.finite_points()
    return (steps, y) if y.size >= 10 else None


def _train_fell(run: RunData, best_step: int) -> bool:
    pts = _loss_points(run)
    if pts is None:
        return False
    steps, y = pts
    span = max(1, int(steps[-1] - steps[0]))
    near = np.abs(steps - best_step) <= 0.05 * span
    if not near.any():
        return False
    return float(np.median(y[-max(3, y.size // 20):])) <= TRAIN_FALL * float(np.median(y[near]))


def _rise_verdict(run: RunData, need_train_fall: bool) -> str:
    r = _val_rise(run)
    if r is None:
        return "no"
    rise, after, best_step = r
    if after < OVERFIT_EVALS_AFTER or rise < RISE_NO:
        return "no"
    if need_train_fall and not _train_fell(run, best_step):
        return "no"
    return "yes" if rise >= RISE_YES else "gray"


def _nan_verdict(run: RunData) -> str:
    for key, s in run.series.items():
        if key == "loss" or key.startswith("grad_norm"):
            if len(s) and not bool(s.finite.all()):
                return "yes"
    flag = run.get("grad_nonfinite")
    return "yes" if flag is not None and bool((flag.values == 1.0).any()) else "no"


def _explode_verdict(run: RunData, onset: int | None) -> str:
    s = run.get("grad_norm")
    if s is None:
        return "no"
    steps, y = s.finite_points()
    if y.size < 10:
        return "no"
    if onset is None:
        return "no"
    before = steps < onset
    if not before.any() or before.all():
        return "no"
    ref = float(np.median(y[before]))
    peak = float(y[~before].max())
    if ref <= 0:
        return "no"
    return "yes" if peak >= EXPLODE_YES * ref else ("gray" if peak >= EXPLODE_NO * ref else "no")


def _dead_verdict(run: RunData) -> str:
    reached = False
    for s in run.with_prefix("act_zero_frac/").values():
        dead = np.nan_to_num(s.values, nan=0.0) >= DEAD_YES
        reached |= bool(dead.any())
        # longest stretch of consecutive dead records
        edges = np.diff(np.concatenate([[0], dead.astype(np.int8), [0]]))
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        if runs.size and int(runs.max()) >= DEAD_RECORDS:
            return "yes"
    return "gray" if reached else "no"


def final_level(run: RunData) -> float | None:
    """Median of the last FINAL_SHARE of the finite training-loss points (None if few)."""
    pts = _loss_points(run)
    if pts is None:
        return None
    y = pts[1]
    return float(np.median(y[-max(3, int(y.size * FINAL_SHARE)):]))


def _plateau_verdict(run: RunData, reference: float | None) -> str:
    level = final_level(run)
    if level is None or reference is None or reference <= 0:
        return "no"
    ratio = level / reference
    return "yes" if ratio >= PLATEAU_YES else ("gray" if ratio >= PLATEAU_NO else "no")


def verdicts(run: RunData, onset: int | None,
             reference: float | None = None) -> dict[str, str]:
    """kind -> "yes" / "gray" / "no" for every kind that has a written criterion.

    `reference`: the healthy runs' final training level on the same data (early_plateau's
    criterion is only judged when it is given)."""
    out = {"overfitting": _rise_verdict(run, True),
           "early_stopping_point": _rise_verdict(run, False),
           "nan_loss": _nan_verdict(run),
           "exploding_gradients": _explode_verdict(run, onset),
           "dead_relu": _dead_verdict(run)}
    if reference is not None:
        out["early_plateau"] = _plateau_verdict(run, reference)
    return out


def apply(label: dict, run: RunData, reference: float | None = None) -> list[str]:
    """Update `label` (must, may, healthy) in place by the criteria; return the changes."""
    must, may = list(label["must"]), list(label["may"])
    changes = []
    for kind, verdict in verdicts(run, label.get("onset"), reference).items():
        if kind in CHECK_ONLY and kind not in must:
            continue
        if verdict == "yes" and kind not in must and kind not in may:
            must.append(kind)
            changes.append(f"+{kind}")
        elif verdict == "gray" and kind not in may:
            if kind in must:
                must.remove(kind)
            may.append(kind)
            changes.append(f"~{kind}")
        elif verdict == "no" and kind in must:
            must.remove(kind)
            may.append(kind)
            changes.append(f"-{kind}")
    label["must"], label["may"] = sorted(must), sorted(may)
    label["healthy"] = label["family"] == "healthy" and not must
    label["relabelled"] = changes
    return changes
