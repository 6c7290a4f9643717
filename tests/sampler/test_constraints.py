"""TNPSampler on constrained studies (Optuna 5's trial.set_constraint and constraints_func)."""

from __future__ import annotations

import math
import numpy as np
import optuna
import pytest

import metabo
from metabo.sampler import PRED_FEASIBILITY_ATTR, PRED_MEAN_ATTR

from conftest import tnp_messages
from .helpers import make_sampler


def _disc_objective(trial: optuna.Trial) -> float:
    """Minimise the distance to (2, 2) outside the unit disc around it and below x + y = 3 (optimum 1)."""
    x, y = trial.suggest_float("x", -5, 5), trial.suggest_float("y", -5, 5)
    trial.set_constraint("disc", 1.0 - (x - 2) ** 2 - (y - 2) ** 2)
    trial.set_constraint("line", x + y - 3)
    return (x - 2) ** 2 + (y - 2) ** 2


def _feasible(trial: optuna.trial.FrozenTrial) -> bool:
    return all(v <= 0 for v in trial.constraints.values())


def _best_feasible(study: optuna.Study) -> float:
    return min((t.value for t in study.trials if _feasible(t)), default=math.inf)


def test_constrained_search_beats_random_search():
    """With the shipped model, 30 trials, 3 seeds: a better best feasible value than random search in every seed
    (the optimum is 1.0 on the disc's edge; random search stays near 1.2-2)."""
    for seed in range(3):
        study = optuna.create_study(sampler=metabo.TNPSampler(seed=seed))
        study.optimize(_disc_objective, n_trials=30)
        rand = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        rand.optimize(_disc_objective, n_trials=30)
        assert _best_feasible(study) < min(_best_feasible(rand), 1.1)
        model_trials = study.trials[4:]
        assert all(0.0 <= t.user_attrs[PRED_FEASIBILITY_ATTR] <= 1.0 for t in model_trials[1:])


def test_without_a_feasible_trial_the_search_seeks_feasibility():
    """Feasible only in a small corner: the model finds it from infeasible trials alone."""

    def corner(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        trial.set_constraint("corner", 1.6 - x - y)
        return x - y

    study = optuna.create_study(sampler=metabo.TNPSampler(seed=0))
    study.enqueue_trial({"x": 0.1, "y": 0.1})
    study.enqueue_trial({"x": 0.3, "y": 0.2})
    study.enqueue_trial({"x": 0.2, "y": 0.5})
    study.enqueue_trial({"x": 0.5, "y": 0.4})
    study.optimize(corner, n_trials=12)
    assert not any(map(_feasible, study.trials[:4]))
    assert any(map(_feasible, study.trials[4:]))


def test_infeasible_trials_still_inform_the_objective(tiny_model, spy_encode_many):
    study = optuna.create_study(sampler=make_sampler(tiny_model))
    study.optimize(_disc_objective, n_trials=6)
    objective_context, *constraint_contexts = spy_encode_many[-1]
    assert len(objective_context) == 5 and len(constraint_contexts) == 2  # every complete trial, feasible or not


def test_constraints_func_is_accepted_as_optuna_samplers_accept_it(tiny_model):
    with pytest.warns(FutureWarning, match="set_constraint"):
        sampler = make_sampler(tiny_model, constraints_func=lambda t: (t.params["x"] - 0.5,))
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2 + t.suggest_float("y", 0, 1), n_trials=7)
    assert all(t.constraints == {"0": t.params["x"] - 0.5} for t in study.trials)
    assert PRED_FEASIBILITY_ATTR in study.trials[-1].user_attrs


def test_trials_with_different_constraints_get_a_warning_and_still_run(tiny_model, tnp_warnings):
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.set_constraint("a", x - 0.8)
        if trial.number % 2:
            trial.set_constraint("b", 0.2 - x)
        return x

    study = optuna.create_study(sampler=make_sampler(tiny_model))
    study.optimize(objective, n_trials=8)
    assert len(study.trials) == 8 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert any("different constraints" in m for m in tnp_messages(tnp_warnings))


def test_infinite_constraint_values_are_taken_as_the_worst_seen(tiny_model):
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.set_constraint("c", math.inf if x > 0.9 else x - 0.5)
        return x

    study = optuna.create_study(sampler=make_sampler(tiny_model))
    study.enqueue_trial({"x": 0.95})
    study.optimize(objective, n_trials=8)
    assert all(np.isfinite(t.user_attrs.get(PRED_MEAN_ATTR, 0.0)) for t in study.trials)


def test_nan_constraints_are_refused_by_optuna_before_they_reach_the_sampler(tiny_model):
    study = optuna.create_study(sampler=make_sampler(tiny_model))
    trial = study.ask()
    with pytest.raises(ValueError, match="NaN"):
        trial.set_constraint("c", float("nan"))


def test_a_non_log_acquisition_falls_back_to_constrained_ei_with_a_warning(tiny_model, tnp_warnings):
    study = optuna.create_study(sampler=make_sampler(tiny_model, acquisition="ucb"))
    study.optimize(_disc_objective, n_trials=6)
    assert any("acquisition='ucb'" in m for m in tnp_messages(tnp_warnings))
