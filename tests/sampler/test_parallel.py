"""Parallel workers: running trials reach the model as pending points (fantasies), never as observations, and
suggestions spread out around them."""

from __future__ import annotations

import time

import numpy as np
import optuna
from optuna.trial import TrialState

from metabo.sampler import PRED_MEAN_ATTR, RESERVED_ATTR
from metabo.space import SearchSpaceEncoder

from .helpers import N_STARTUP, make_sampler, quadratic


def _ask_all(study, n: int) -> list:
    asked = []
    for _ in range(n):
        trial = study.ask()
        quadratic(trial)  # suggests every parameter; the trial stays RUNNING
        asked.append(trial)
    return asked


def test_running_trials_are_pending(tiny_model, spy_encode):
    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=6))
    study.optimize(quadratic, n_trials=N_STARTUP + 1)
    spy_encode.clear()
    asked = _ask_all(study, 3)
    pending_counts = [0 if call.x_pending is None else len(call.x_pending) for call in spy_encode]
    assert pending_counts == [0, 1, 2]
    # they are not observations: the own context is the completed trials only
    assert [len(call.y_own) for call in spy_encode] == [N_STARTUP + 1] * 3
    # the pending points handed to the model are exactly the running trials' params
    enc = SearchSpaceEncoder(asked[0].distributions)
    np.testing.assert_allclose(spy_encode[-1].x_pending, enc.encode_many([t.params for t in asked[:2]]), atol=1e-12)
    suggestions = [tuple(t.params[k] for k in sorted(t.params)) for t in asked]
    assert len(set(suggestions)) == 3
    for t in asked:
        assert PRED_MEAN_ATTR in study.trials[t.number].user_attrs
        study.tell(t, quadratic(t))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_pending_points_change_the_next_suggestion(tiny_model):
    def run(pending: bool) -> dict:
        study = optuna.create_study(sampler=make_sampler(tiny_model, seed=7))
        study.optimize(quadratic, n_trials=N_STARTUP + 1)
        (first,) = _ask_all(study, 1)
        if not pending:
            study.tell(first, state=TrialState.FAIL)  # failed trials are ignored
        trial = study.ask()
        quadratic(trial)
        return trial.params

    # the same generator draws in both runs; only whether the first suggestion is still running differs
    assert run(pending=True) != run(pending=False)


def test_suggestions_keep_their_distance_from_running_trials(tiny_model):
    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=8))
    study.optimize(quadratic, n_trials=N_STARTUP + 1)
    asked = _ask_all(study, 4)
    enc = SearchSpaceEncoder(asked[0].distributions)
    x = enc.encode_many([t.params for t in asked])
    min_distance = 0.01  # CandidateSearchConfig's default
    for i in range(1, len(x)):
        assert np.abs(x[:i] - x[i]).max(1).min() >= min_distance - 1e-9


# ---------------------------------------------------------------------------------------------- simultaneous asks
def _unit_points(study) -> np.ndarray:
    return np.array([[t.params["x"] / 5 + 0.5, t.params["y"] / 5 + 0.5] for t in study.trials])


def _two_asked(model):
    """A study past its start-up trials with two trials asked at once (no parameters suggested yet)."""
    study = optuna.create_study(sampler=make_sampler(model))
    study.optimize(lambda t: t.suggest_float("x", -2.5, 2.5) ** 2 + t.suggest_float("y", -2.5, 2.5) ** 2, n_trials=6)
    space = {"x": optuna.distributions.FloatDistribution(-2.5, 2.5),
             "y": optuna.distributions.FloatDistribution(-2.5, 2.5)}
    return study, space, study.ask(), study.ask()


def test_a_suggestion_is_reserved_before_its_parameters_are_stored(tiny_model):
    """A trial asked while another has its suggestion but no stored parameters yet avoids that suggestion."""
    study, space, first, second = _two_asked(tiny_model)
    sampler = study.sampler
    frozen = study._storage.get_trial(first._trial_id)
    chosen = sampler.sample_relative(study, frozen, space)
    assert study._storage.get_trial(first._trial_id).params == {}  # nothing stored yet ...
    assert RESERVED_ATTR in study._storage.get_trial(first._trial_id).system_attrs  # ... but the point is reserved
    other = sampler.sample_relative(study, study._storage.get_trial(second._trial_id), space)
    gap = max(abs(chosen[k] - other[k]) / 5.0 for k in space)
    assert gap >= sampler._search.min_distance


def test_a_clash_found_after_choosing_is_resolved(tiny_model, monkeypatch):
    """Two workers that chose the same point at the same moment: the one that sees the other's reservation
    chooses again, away from it."""
    study, space, first, second = _two_asked(tiny_model)
    sampler = study.sampler
    chosen = sampler.sample_relative(study, study._storage.get_trial(first._trial_id), space)
    original = sampler._choose
    calls = []

    def same_point_first(encoder, x, outcomes, x_pending, x_avoid):
        x_next, logits, own = original(encoder, x, outcomes, x_pending, x_avoid)
        calls.append(len(x_avoid))
        if len(calls) == 1:  # as if the first trial's reservation had not been visible when choosing
            x_next = encoder.encode_many([chosen])[0]
        return x_next, logits, own

    monkeypatch.setattr(sampler, "_choose", same_point_first)
    other = sampler.sample_relative(study, study._storage.get_trial(second._trial_id), space)
    assert calls == [0, 1]  # chose again, avoiding the clashing point
    assert max(abs(chosen[k] - other[k]) / 5.0 for k in space) >= sampler._search.min_distance


def test_threads_asking_at_once_keep_apart(tiny_model):
    """n_jobs=3 on one study: no two model-driven trials closer than min_distance."""

    def objective(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", -2.5, 2.5), trial.suggest_float("y", -2.5, 2.5)
        time.sleep(0.02)
        return (x - 0.3) ** 2 + (y + 0.2) ** 2

    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=1))
    study.optimize(objective, n_trials=24, n_jobs=3)
    points = _unit_points(study)[N_STARTUP:]
    gaps = np.abs(points[:, None, :] - points[None, :, :]).max(-1) + np.eye(len(points))
    assert gaps.min() >= study.sampler._search.min_distance
