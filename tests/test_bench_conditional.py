"""The define-by-run conditional problems of ``metabo bench`` (``conditional/...``)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from metabo.bench.problems import get_problem, select_problems
from metabo.bench.problems.conditional import CASH_MODELS, CLASSIFIER, CashProblem
from metabo.bench.runner import execute_run
from metabo.bench.store import RunKey
from metabo.meta.yahpo import unavailable_reason

needs_yahpo = pytest.mark.skipif(unavailable_reason("rbv2_xgboost") is not None,
                                 reason=str(unavailable_reason("rbv2_xgboost")))


def _suggested(problem, seed: int) -> dict:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return problem.suggest(study.ask())


def test_cash_suggests_the_chosen_models_parameters_only():
    problem = CashProblem("digits", "error")
    seen = set()
    for seed in range(12):
        params = _suggested(problem, seed)
        model = params[CLASSIFIER]
        seen.add(model)
        assert set(params) == {CLASSIFIER, *(f"{model}_{name}" for name in CASH_MODELS[model][0])}
        assert set(params) <= set(problem.search_space())
    assert len(seen) >= 3


def test_cash_evaluates_deterministically_and_ignores_other_models_parameters():
    problem = get_problem("conditional/cash/breast_cancer/logloss")
    params = {CLASSIFIER: "knn", "knn_n_neighbors": 7, "knn_weights": "distance"}
    value = problem.evaluate(params)
    assert 0 < value < 1
    assert problem.evaluate({**params, "svm_C": 3.0}) == value


@needs_yahpo
def test_conditional_xgboost_follows_the_booster_conditions():
    problem = get_problem("conditional/rbv2_xgboost/1049")
    boosters = set()
    for seed in range(10):
        params = _suggested(problem, seed)
        booster = params["booster"]
        boosters.add(booster)
        assert ("eta" in params) == (booster != "gblinear")
        assert ("rate_drop" in params) == (booster == "dart")
        assert "alpha" in params and "nrounds" in params
    assert len(boosters) >= 2
    assert all(p.name.startswith("conditional/rbv2_xgboost/") for p in select_problems("conditional/rbv2_xgboost/*"))


def test_runner_asks_define_by_run():
    result = execute_run(RunKey("random", "conditional/cash/digits/error", 0, 3))
    assert len(result.trials) == 3 and not any(t.error for t in result.trials)
    for record in result.trials:
        model = record.params[CLASSIFIER]
        assert all(name == CLASSIFIER or name.startswith(f"{model}_") for name in record.params)


def test_categorical_bbob_maps_each_choice_to_a_shuffled_level():
    from metabo.bench.problems.bbob import BBOBProblem
    from metabo.bench.problems.categorical import CategoricalBBOB

    problem = get_problem("categorical/f01_d4_c50")
    assert problem == CategoricalBBOB(1) and problem.name == "categorical/f01_d4_c50"
    space = problem.search_space()
    assert len(space["choice"].choices) == 50 and set(space) == {"choice", "x1", "x2", "x3"}
    levels = problem._levels()
    assert sorted(levels) == pytest.approx(list(np.linspace(-5, 5, 50)))
    assert list(levels) != sorted(levels)  # shuffled
    params = {"choice": "c07", "x1": 0.5, "x2": -1.0, "x3": 2.0}
    expected = BBOBProblem(1, 1, 4).evaluate_array(np.array([levels[7], 0.5, -1.0, 2.0]))
    assert problem.evaluate(params) == pytest.approx(expected)
    assert len(select_problems("categorical/*")) == 8
    with pytest.raises(KeyError):
        get_problem("categorical/f99_d4_c50")
