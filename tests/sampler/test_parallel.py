"""Parallel workers: running trials reach the model as pending points (fantasies), never as observations, and
suggestions spread out around them."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import TrialState

from metabo.sampler import PRED_MEAN_ATTR
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
