"""The runnable examples that need nothing beyond the test extras."""

from __future__ import annotations

import runpy
import warnings
from pathlib import Path

import optuna

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_cash_example_runs_both_samplers():
    module = runpy.run_path(str(EXAMPLES / "cash_sklearn.py"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        best = module["main"](["--trials", "6"])
    assert set(best) == {"metabo", "tpe (group=True)"}
    assert all(0.0 <= value < 1.0 for value in best.values())
