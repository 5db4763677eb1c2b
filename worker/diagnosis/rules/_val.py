"""The validation curve as the validation rules read it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worker.diagnosis.curve import curve, theil_sen
from worker.diagnosis.series import RunData

MIN_EVALS = 6  # fewer finite validation points: validation rules stay silent
N_EVAL_BUCKETS = 100  # validation logged more often than this is read in buckets
SWING_EVALS = 5  # evaluations needed to read swings and trends
# A rise since the best evaluation (overfitting, early_stopping_point), see Val.rose:
RISE_EVALS_AFTER = 3  # the best evaluation lies >= 3 evaluations behind
RISE = 0.2  # >= 20% above the best, now and for the last 3 evaluations (healthy runs on
#             small validation sets bump 15-17% above their best and come back)...
RISE_NOISE = 4.0  # ...and >= 4x the evaluation noise since the best (self-normalised)
STEADY_EVALS = 5  # or, over >= 5 evaluations after the best,
STEADY_TAU = 0.8  # a steady rise (Kendall's tau of the evaluations from the best on >= 0.8)
STEADY_RISE = 0.12  # of >= 12% (now and for the last 3 evaluations; noise test as above)


@dataclass(frozen=True)
class Val:
    """Validation loss per evaluation (bucket medians), lightly smoothed, and its best."""

    steps: np.ndarray
    raw: np.ndarray  # one value per evaluation (bucket medians when logged very often)
    smooth: np.ndarray  # median of each value and its two neighbours
    best_i: int

    @property
    def best(self) -> float:
        return float(self.smooth[self.best_i])

    @property
    def best_step(self) -> int:
        return int(self.steps[self.best_i])

    @property
    def first(self) -> float:
        return float(self.smooth[0])

    @property
    def now(self) -> float:
        return float(np.median(self.smooth[-3:]))

    @property
    def worse_recently(self) -> float:
        """How far above the best the lowest of the last 3 evaluations is, relative."""
        return (float(self.raw[-3:].min()) - self.best) / self.best if self.best > 0 else 0.0

    @property
    def rising(self) -> float:
        """Kendall's tau of the raw evaluations from the best one on: 1.0 when each is higher
        than all before it, near 0 for a bumpy, trendless stretch."""
        y = self.raw[self.best_i:]
        if y.size < 3:
            return 0.0
        i, j = np.triu_indices(y.size, k=1)
        return float(np.mean(np.sign(y[j] - y[i])))

    @property
    def noise(self) -> float:
        """Evaluation noise since the best evaluation, relative to the best: the robust std
        of each evaluation around the running median of 3 (a trend, steady or bending, does
        not count as noise; bumps do). 0.0 with fewer than 3 evaluations there."""
        r = (self.raw - self.smooth)[self.best_i:]
        if r.size < 3 or self.best <= 0:
            return 0.0
        return 1.4826 * float(np.median(np.abs(r - np.median(r)))) / self.best

    @property
    def undone(self) -> float:
        """Share of the progress from the first evaluation to the best that is lost now."""
        gained = self.first - self.best
        return (self.now - self.best) / gained if gained > 0 else 0.0

    @property
    def evals_after(self) -> int:
        """Evaluations after the best one."""
        return len(self.steps) - 1 - self.best_i

    @property
    def rise(self) -> float:
        """How far above the best the current level is, relative."""
        return (self.now - self.best) / self.best if self.best > 0 else 0.0

    def rose(self) -> bool:
        """The validation loss rose since its best beyond its noise and stayed up: by RISE,
        or by STEADY_RISE when nearly every evaluation since the best topped all before it."""
        if self.evals_after < RISE_EVALS_AFTER or self.worse_recently < RISE_NOISE * self.noise:
            return False
        floor = RISE
        if self.evals_after >= STEADY_EVALS and self.rising >= STEADY_TAU:
            floor = STEADY_RISE
        return self.rise >= floor and self.worse_recently >= floor

    @property
    def span(self) -> int:
        return max(1, int(self.steps[-1] - self.steps[0]))


def val_curve(run: RunData, min_evals: int = MIN_EVALS) -> Val | None:
    """The `val/loss` curve, or None with fewer than `min_evals` finite evaluations."""
    c = curve(run, "val/loss", min_points=min_evals)
    if c is None:
        return None
    s = run.get("val/loss")
    b = s.buckets(N_EVAL_BUCKETS, 1)
    v = b.median
    if v.size < min_evals:
        return None
    padded = np.concatenate([v[:1], v, v[-1:]])
    smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    return Val(b.step, v, smooth, int(np.argmin(smooth)))


def val_window(run: RunData, s0: float, min_evals: int,
               skip_first: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, values) of the validation evaluations at steps >= `s0` (bucket medians when
    logged very often), the window widened to the last `min_evals` evaluations if it holds
    fewer; with `skip_first` the run's first evaluation never counts (the window still holds
    `min_evals`). None with too few evaluations in all."""
    s = run.get("val/loss")
    if s is None:
        return None
    b = s.buckets(N_EVAL_BUCKETS, 1)
    if b.step.size < min_evals + skip_first:
        return None
    m = b.step >= min(s0, float(b.step[-min_evals]))
    if skip_first:
        m[0] = False
    return b.step[m], b.median[m]


def val_swing(run: RunData, s0: float,
              min_evals: int = SWING_EVALS) -> tuple[float, float] | None:
    """How the validation loss moves over steps >= `s0`, relative to its median there.

    Returns (swing, trend): the robust std of the evaluations around their Theil-Sen line,
    and that line's change over the window. A fixed validation set removes batch sampling
    noise, so a large swing is the weights themselves jumping. The window is widened to the
    last `min_evals` evaluations if it holds fewer; None with fewer evaluations in all.
    """
    win = val_window(run, s0, min_evals)
    if win is None:
        return None
    x, y = win[0].astype(np.float64), win[1]
    level = float(np.median(y))
    if level <= 0:
        return None
    slope = theil_sen(x, y)
    resid = y - slope * x
    swing = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return swing / level, slope * (x[-1] - x[0]) / level
