"""The benchmark's written label criteria (bench/diagnosis/criteria.py) on built runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from worker.diagnosis import RunData

_PATH = Path(__file__).resolve().parents[2] / "bench" / "diagnosis" / "criteria.py"
_SPEC = importlib.util.spec_from_file_location("diagnosis_criteria", _PATH)
criteria = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(criteria)

T = np.arange(0, 700, 10)


def _zeros(values) -> RunData:
    return RunData.from_points({"act_zero_frac/act1": (T, np.full(T.size, 0.5)),
                                "act_zero_frac/act2": (T, np.asarray(values, float))}, {})


def test_dead_relu_needs_a_layer_that_stays_dead():
    assert criteria.verdicts(_zeros([0.5] * 2 + [1.0] * 68), None)["dead_relu"] == "yes"
    # reached 90%, then the net went to NaN (NaN activations are not zeros): gray
    went_nan = [0.5, 0.92, 0.98] + [np.nan] * 67
    assert criteria.verdicts(_zeros(went_nan), None)["dead_relu"] == "gray"
    assert criteria.verdicts(_zeros([0.5, 0.95, 0.5] * 23 + [0.5]), None)["dead_relu"] == "gray"
    assert criteria.verdicts(_zeros([0.6] * 70), None)["dead_relu"] == "no"


def test_early_plateau_is_judged_against_the_healthy_level():
    steps = np.arange(1000)
    loss = 0.69 * np.exp(-steps / 30) + 0.2  # stuck at 0.2
    run = RunData.from_points({"loss": (steps, loss)}, {})
    assert "early_plateau" not in criteria.verdicts(run, None)
    assert criteria.verdicts(run, None, reference=0.13)["early_plateau"] == "yes"  # 1.54x
    assert criteria.verdicts(run, None, reference=0.16)["early_plateau"] == "gray"  # 1.25x
    assert criteria.verdicts(run, None, reference=0.19)["early_plateau"] == "no"  # 1.05x


def test_a_check_only_criterion_never_adds_its_kind():
    label = {"family": "healthy", "must": [], "may": []}
    criteria.apply(label, _zeros([1.0] * 70))
    assert label["must"] == [] and label["healthy"] is True
