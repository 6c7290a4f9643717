"""The scikit-learn tuning problems: names, search spaces, determinism, finiteness, picklability."""

from __future__ import annotations

import math
import pickle

import optuna
import pytest

from metabo.bench.problems import sklearn_tuning as sk


def _random_params(problem, seed: int = 0) -> dict:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return study.ask(problem.search_space()).params


def test_default_matrix_names_are_unique_and_well_formed():
    probs = sk.problems()
    names = [p.name for p in probs]
    assert len(names) == len(set(names)) == len(sk.MODELS) * len(sk.DEFAULT_TASKS)
    for p in probs:
        family, model, dataset, metric = p.name.split("/")
        assert (family, model, dataset, metric) == ("sklearn", p.model, p.dataset, p.metric)
        assert p.family == "sklearn" and p.known_optimum is None and p.random_median_points > 0


@pytest.mark.parametrize("problem", sk.problems(), ids=lambda p: p.name)
def test_search_space_is_valid(problem):
    space = problem.search_space()
    assert problem.dim == len(space) > 0
    for dist in space.values():
        assert isinstance(dist, optuna.distributions.BaseDistribution)
    params = _random_params(problem)
    for name, dist in space.items():
        assert dist._contains(dist.to_internal_repr(params[name]))


def test_svm_has_epsilon_only_for_regression():
    assert "epsilon" in sk.SklearnProblem("svm", "diabetes", "mse").search_space()
    assert "epsilon" not in sk.SklearnProblem("svm", "wine", "error").search_space()


def test_get_problem_parses_any_valid_name():
    assert sk.get_problem("sklearn/svm/wine/error") == sk.SklearnProblem("svm", "wine", "error")
    for bad in ("sklearn/svm/wine", "sklearn/svm/diabetes/error", "bbob/svm/wine/error"):
        with pytest.raises(KeyError):
            sk.get_problem(bad)


def test_invalid_combinations_are_refused():
    with pytest.raises(ValueError):
        sk.SklearnProblem("svm", "diabetes", "error")
    with pytest.raises(ValueError):
        sk.SklearnProblem("nope", "iris", "error")
    with pytest.raises(ValueError):
        sk.SklearnProblem("knn", "nope", "error")


@pytest.mark.parametrize("name", ["sklearn/knn/breast_cancer/logloss", "sklearn/linear/diabetes/mse",
                                  "sklearn/svm/iris/error", "sklearn/rf/wine/logloss"])
def test_evaluate_is_deterministic_and_finite(name):
    _, model, dataset, metric = name.split("/")
    problem = sk.SklearnProblem(model, dataset, metric)
    params = _random_params(problem, seed=3)
    first = problem.evaluate(params)
    assert math.isfinite(first) and 0.0 <= first <= sk.METRIC_CAP[metric]
    assert problem.evaluate(params) == first


def test_every_model_evaluates_on_a_small_dataset():
    for model in sk.MODELS:
        for dataset, metric in (("iris", "logloss"), ("diabetes", "mae")):
            problem = sk.SklearnProblem(model, dataset, metric)
            assert math.isfinite(problem.evaluate(_random_params(problem, seed=1)))


def test_diverged_fit_scores_the_cap():
    problem = sk.SklearnProblem("linear", "diabetes", "mse")
    params = {"alpha": 1e-6, "l1_ratio": 0.0, "eta0": 1.0, "learning_rate": "constant"}
    assert problem.evaluate(params) == pytest.approx(sk.METRIC_CAP["mse"])


def test_problems_pickle_and_compare_equal():
    for p in sk.problems():
        clone = pickle.loads(pickle.dumps(p))
        assert clone == p and clone.name == p.name
