"""TNPSampler on define-by-run conditional spaces: conditional parameters come from the model."""

from __future__ import annotations

import optuna
from optuna.samplers import RandomSampler

from conftest import tnp_messages
from metabo.sampler import PRED_MEAN_ATTR

from .helpers import N_STARTUP, make_sampler


class CountingSampler(RandomSampler):
    """A random sampler that records which parameters it was asked for, trial by trial."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.asked: list[tuple[int, str]] = []

    def sample_independent(self, study, trial, param_name, param_distribution):
        self.asked.append((trial.number, param_name))
        return super().sample_independent(study, trial, param_name, param_distribution)


def cash(trial: optuna.Trial) -> float:
    model = trial.suggest_categorical("model", ["svm", "rf", "lin"])
    if model == "svm":
        c = trial.suggest_float("svm_C", 1e-3, 1e3, log=True)
        return 0.1 + (c - 3.0) ** 2 / 1e4
    if model == "rf":
        return 0.3 + trial.suggest_int("rf_depth", 1, 20) / 100
    return 0.5 + trial.suggest_float("lin_alpha", 0.0, 1.0)


def test_conditional_parameters_are_modelled_once_seen(tiny_model, tnp_warnings):
    independent = CountingSampler(seed=0)
    sampler = make_sampler(tiny_model, seed=3, independent_sampler=independent)
    study = optuna.create_study(sampler=sampler)
    study.optimize(cash, n_trials=N_STARTUP + 16)
    seen: set[str] = set()
    for trial in study.trials:
        if trial.number >= N_STARTUP:
            # a parameter goes to the independent sampler only the first time any trial suggests it
            assert {name for number, name in independent.asked if number == trial.number} <= set(trial.params) - seen
            assert PRED_MEAN_ATTR in trial.user_attrs
        seen |= set(trial.params)
    assert tnp_messages(tnp_warnings) == []
    later = [t for t in study.trials[N_STARTUP:] if t.params["model"] == "svm"]
    assert later, "the model never chose the best classifier"


def test_relative_params_hold_only_the_active_ones(tiny_model):
    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=1))
    study.optimize(cash, n_trials=N_STARTUP + 8)
    for trial in study.trials[N_STARTUP:]:
        reserved = trial.system_attrs["metabo:suggestion"]
        model = study.trials[trial.number].params["model"]
        expected = {"svm": "svm_C", "rf": "rf_depth", "lin": "lin_alpha"}[model]
        others = {"svm_C", "rf_depth", "lin_alpha"} - {expected}
        if any(expected in t.params for t in study.trials[: trial.number]):  # known when it was suggested
            assert expected in reserved
        assert not others & reserved.keys()


def test_conditional_space_with_objectives_constraints_pruning_and_two_threads(tiny_model, tnp_warnings):
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        value = cash(trial)
        if trial.params["model"] == "svm" and trial.suggest_categorical("svm_kernel", ["rbf", "poly"]) == "poly":
            value += trial.suggest_int("svm_degree", 2, 5) / 10  # nested: active only for the poly kernel
        trial.set_constraint("budget", value - 0.9)
        if trial.number % 7 == 3:
            raise optuna.TrialPruned()
        return value, 1.0 - value

    study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler(tiny_model, seed=2))
    study.optimize(objective, n_trials=N_STARTUP + 14, n_jobs=2)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) + states.count(optuna.trial.TrialState.PRUNED) == 18
    assert tnp_messages(tnp_warnings) == []
    for trial in study.trials:
        kernel = trial.params.get("svm_kernel")
        assert ("svm_degree" in trial.params) == (kernel == "poly")


def test_a_conditional_space_starts_with_ten_random_trials_by_default(tiny_model):
    from metabo.sampler import CONDITIONAL_STARTUP_TRIALS

    study = optuna.create_study(sampler=metabo_sampler(tiny_model))
    study.optimize(cash, n_trials=CONDITIONAL_STARTUP_TRIALS + 3)
    chosen = [PRED_MEAN_ATTR in t.user_attrs for t in study.trials]
    assert chosen == [False] * CONDITIONAL_STARTUP_TRIALS + [True] * 3

    flat = optuna.create_study(sampler=metabo_sampler(tiny_model))
    flat.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=7)
    assert [PRED_MEAN_ATTR in t.user_attrs for t in flat.trials] == [False] * 4 + [True] * 3
    explicit = optuna.create_study(sampler=make_sampler(tiny_model, seed=0))  # n_startup_trials given: kept
    explicit.optimize(cash, n_trials=N_STARTUP + 2)
    assert all(PRED_MEAN_ATTR in t.user_attrs for t in explicit.trials[N_STARTUP + 1:])


def metabo_sampler(model):
    import metabo

    from .helpers import FAST_SEARCH

    return metabo.TNPSampler(model=model, seed=0, search=FAST_SEARCH)
