"""TNPSampler's limits and fallbacks, never a crash: failed, pruned and infinite trials, parameters outside the
relative space (with one warning each), wide categoricals, more trials than the context holds."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from conftest import tnp_messages
from metabo.sampler import PRED_MEAN_ATTR
from metabo.space import SearchSpaceEncoder

from .helpers import N_STARTUP, make_sampler, quadratic


def test_failed_nan_inf_and_pruned_trials(tiny_model, tnp_warnings):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        z = trial.suggest_int("z", 1, 9)
        kind = trial.number % 6
        if kind == 1:
            raise RuntimeError("boom")
        if kind == 2:
            return float("nan")
        if kind == 3:
            return float("inf")
        if kind == 4:
            trial.report(x, step=0)
            raise optuna.TrialPruned()
        if kind == 5:
            return float("-inf")
        return x * z

    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=4))
    study.optimize(objective, n_trials=24, catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert len(states) == 24
    assert states.count(TrialState.FAIL) == 8  # exceptions and NaN
    assert states.count(TrialState.PRUNED) == 4
    assert any(PRED_MEAN_ATTR in t.user_attrs for t in study.trials)
    for t in study.trials:
        if PRED_MEAN_ATTR in t.user_attrs:
            assert math.isfinite(t.user_attrs[PRED_MEAN_ATTR])
    assert tnp_messages(tnp_warnings) == []


def test_infinite_values_become_the_worst_finite_value(tiny_model, spy_encode):
    values = iter([1.0, float("inf"), 3.0, 2.0, float("-inf"), 0.5])

    def objective(trial):
        trial.suggest_float("x", 0.0, 1.0)
        return next(values)

    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=0))
    study.optimize(objective, n_trials=6)
    y = spy_encode[-1].y_own  # trials 0..4 (minimise): +inf and -inf both count as the worst finite value, 3
    assert len(y) == 5 and np.isfinite(y).all()
    assert y[1] == y[2] == y[4] == y.min() and y[3] > y.min()
    assert int(np.argmax(y)) == 0


def test_only_infinite_values_so_far_never_crash(tiny_model, tnp_warnings, spy_encode):
    def objective(trial):
        trial.suggest_float("x", 0.0, 1.0)
        return float("inf") if trial.number < 6 else 1.0

    study = optuna.create_study(sampler=make_sampler(tiny_model))
    study.optimize(objective, n_trials=9)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    # the model waits for a finite value: trial 7 is the first it chooses (trial 6's 1.0 and six infinite values,
    # which count as that worst finite value), trial 8 the second
    assert [len(e.y_own) for e in spy_encode] == [7, 8]
    assert np.all(spy_encode[0].y_own == spy_encode[0].y_own[0])


def test_no_spurious_independent_sampling_warning_for_static_space(tiny_model, tnp_warnings):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        return float("inf") if trial.number < N_STARTUP + 1 else x

    study = optuna.create_study(sampler=make_sampler(tiny_model))
    study.optimize(objective, n_trials=N_STARTUP + 3)
    assert tnp_messages(tnp_warnings) == []


def test_static_space_emits_no_warning(tiny_model, tnp_warnings):
    study = optuna.create_study(sampler=make_sampler(tiny_model))
    study.optimize(quadratic, n_trials=N_STARTUP + 3)
    assert tnp_messages(tnp_warnings) == []


def test_dynamic_param_warns_once_and_conditional_param_is_modelled(tiny_model, tnp_warnings):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        value = x
        if trial.number % 2 == 0:  # conditional
            value += trial.suggest_float("cond", 0.0, 1.0)
        dyn = trial.suggest_int("dyn", 0, 3 + trial.number)  # dynamic range
        return value + dyn

    study = optuna.create_study(sampler=make_sampler(tiny_model))
    study.optimize(objective, n_trials=14)
    messages = tnp_messages(tnp_warnings)
    assert len(messages) == 1 and "'dyn'" in messages[0]
    # x and the conditional parameter come from the model
    assert all(PRED_MEAN_ATTR in t.user_attrs for t in study.trials[N_STARTUP:])
    assert "cond" in study.sampler.infer_relative_search_space(study, study.trials[-1])
    for t in study.trials:
        assert 0 <= t.params["dyn"] <= 3 + t.number


def test_warning_can_be_disabled(tiny_model, tnp_warnings):
    def objective(trial):
        return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_float(f"p{trial.number % 3}", 0, 1)

    study = optuna.create_study(sampler=make_sampler(tiny_model, warn_independent_sampling=False))
    study.optimize(objective, n_trials=N_STARTUP + 3)
    assert tnp_messages(tnp_warnings) == []


@pytest.mark.parametrize("with_float", [False, True])
def test_wide_categorical_is_modelled(tiny_model, with_float, tnp_warnings):
    n = 40  # more choices than MAX_ONE_HOT_CHOICES and than the model's input width

    def objective(trial):
        c = trial.suggest_categorical("c", list(range(n)))
        x = trial.suggest_float("x", 0.0, 1.0) if with_float else 0.0
        return (c - 7) ** 2 + x

    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=0))
    study.optimize(objective, n_trials=N_STARTUP + 8)
    assert len({t.params["c"] for t in study.trials[N_STARTUP:]}) > 1
    assert tnp_messages(tnp_warnings) == []
    assert all(PRED_MEAN_ATTR in t.user_attrs for t in study.trials[N_STARTUP:])
    assert all("c" in t.system_attrs["metabo:suggestion"] for t in study.trials[N_STARTUP:])  # the model's


def test_more_trials_than_the_context_holds(tiny_model, spy_encode):
    limit = tiny_model.cfg.max_context
    n_old = limit + 40
    dists = {"x": FloatDistribution(-1.0, 1.0), "n": IntDistribution(0, 4)}
    rng = np.random.default_rng(0)
    trials = []
    for _ in range(n_old):
        x, n = float(rng.uniform(-1, 1)), int(rng.integers(0, 5))
        trials.append(create_trial(params={"x": x, "n": n}, distributions=dists, value=x * x + n))
    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=1))
    study.add_trials(trials)
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2 + t.suggest_int("n", 0, 4), n_trials=2)
    assert len(spy_encode) == 2
    x_ctx, y_ctx = spy_encode[0].x_own, spy_encode[0].y_own
    assert len(y_ctx) == limit and x_ctx.shape == (limit, 2)
    # the best half of the trials is always kept
    values = np.array([t.value for t in trials])
    best_rows = {(round(trials[i].params["x"], 12), trials[i].params["n"]) for i in np.argsort(values)[: limit // 2]}
    enc = SearchSpaceEncoder(dists)
    kept = {(round(p["x"], 12), p["n"]) for p in (enc.decode(r) for r in x_ctx)}
    assert best_rows <= kept
    assert PRED_MEAN_ATTR in study.trials[-1].user_attrs


# ---------------------------------------------------------------------------------------------- pruned trials
def _pruned_curve(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", 0, 1) for i in range(2)])
    final = float(((x - 0.3) ** 2).sum())
    for step in range(1, 11):
        trial.report(final + (1 + x[0]) * np.exp(-step / 3), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return final


def test_a_pruned_point_is_never_proposed_again(tiny_model):
    sampler = make_sampler(tiny_model)
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.MedianPruner(n_startup_trials=3,
                                                                                      n_warmup_steps=1))
    study.optimize(_pruned_curve, n_trials=20)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned
    for t in study.trials[N_STARTUP:]:
        earlier = [p for p in pruned if p.number < t.number]
        gaps = [max(abs(t.params[k] - p.params[k]) for k in t.params) for p in earlier]
        assert not gaps or min(gaps) >= 0.01


def test_huge_penalties_get_a_warning_and_every_value_stays_finite(tiny_model, tnp_warnings):
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        return 1e300 if x > 0.6 else x

    study = optuna.create_study(sampler=make_sampler(tiny_model))
    study.optimize(objective, n_trials=10)
    assert any("read like float('inf')" in m for m in tnp_messages(tnp_warnings))
    assert all(np.isfinite(t.user_attrs.get(PRED_MEAN_ATTR, 0.0)) or t.value > 1e299 for t in study.trials)


def test_search_space_values_must_be_distributions(tiny_model):
    with pytest.raises(TypeError, match="optuna.distributions"):
        make_sampler(tiny_model, search_space={"x": "uniform(0, 1)"})


def test_trials_outside_a_declared_space_are_left_out_with_a_warning(tiny_model, tnp_warnings):
    sampler = make_sampler(tiny_model, search_space={"x": FloatDistribution(0, 1)})
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0, 10) - 6) ** 2, n_trials=8)
    assert any("declares" in m for m in tnp_messages(tnp_warnings))
    assert all(t.params["x"] > 1 for t in study.trials[N_STARTUP:])  # never clipped into the declared range
