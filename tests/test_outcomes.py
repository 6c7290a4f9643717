"""Tests of metabo.outcomes: objectives and constraints on the model's scale."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import create_trial

from metabo.normalise import DEFAULT_TRANSFORM
from metabo.outcomes import constraint_names, pareto_ranks, read_outcomes

MIN, MAX = StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE


def _trial(values, constraints=None):
    attrs = {} if constraints is None else {f"constraints:{k}": v for k, v in constraints.items()}
    return create_trial(values=list(values), params={}, distributions={}, system_attrs=attrs)


def test_a_constraint_holds_exactly_when_its_output_reaches_the_threshold():
    rng = np.random.RandomState(0)
    raw = rng.randn(40) * 3 + 1
    trials = [_trial([float(v)], {"c": float(c)}) for v, c in zip(rng.rand(40), raw)]
    out = read_outcomes(trials, [MIN], DEFAULT_TRANSFORM, ["c"])
    assert out.n_objectives == 1 and out.n_constraints == 1
    np.testing.assert_array_equal(out.y[:, 1] >= out.thresholds[0], raw <= 0)
    np.testing.assert_array_equal(out.feasible, raw <= 0)
    # a constraint is a minimised value: a smaller raw value is a larger output
    assert np.all(np.diff(out.y[np.argsort(raw), 1]) <= 0)


def test_objectives_follow_their_directions():
    trials = [_trial([float(a), float(b)]) for a, b in [(1, 1), (2, 2), (3, 3)]]
    out = read_outcomes(trials, [MIN, MAX], DEFAULT_TRANSFORM)
    assert np.all(np.diff(out.y[:, 0]) < 0) and np.all(np.diff(out.y[:, 1]) > 0)
    assert out.thresholds.shape == (0,) and out.feasible.all()


def test_missing_and_infinite_constraints_have_documented_fallbacks():
    trials = [_trial([1.0], {"a": -1.0, "b": 2.0}), _trial([2.0], {"a": math.inf}), _trial([3.0], {"a": 0.5, "b": -1.0}),
              _trial([0.5], {"a": -2.0, "b": -3.0})]
    names = constraint_names(trials)
    assert names == ["a", "b"]
    out = read_outcomes(trials, [MIN], DEFAULT_TRANSFORM, names)
    assert np.isnan(out.y[1, 2]) and np.isfinite(out.y[:, :2]).all()  # b missing on trial 1; inf became finite
    assert out.y[1, 1] == out.y[:, 1].min()  # the infinite violation is the worst value of a
    np.testing.assert_array_equal(out.feasible, [False, False, False, True])
    x = np.arange(8.0).reshape(4, 2)
    kx, ky = out.known_rows(2, x)
    np.testing.assert_array_equal(kx, x[[0, 2, 3]])
    assert out.known_rows(0, x)[0] is x


def test_ranking_puts_every_infeasible_trial_below_every_feasible_one():
    trials = [_trial([v], {"c": c}) for v, c in [(5.0, -1), (1.0, 3.0), (4.0, -0.5), (0.0, 0.1), (9.0, -2)]]
    out = read_outcomes(trials, [MIN], DEFAULT_TRANSFORM, ["c"])
    order = np.argsort(-out.ranking())
    assert list(order) == [2, 0, 4, 3, 1]  # feasible by value, then infeasible by violation


def test_pareto_ranks_sort_fronts():
    y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.4], [0.0, 0.0], [0.5, 0.5]])
    np.testing.assert_array_equal(pareto_ranks(y), [0, 0, 0, 1, 2, 0])
    trials = [_trial(list(-row)) for row in y]
    out = read_outcomes(trials, [MIN, MIN], DEFAULT_TRANSFORM)
    assert set(out.feasible_front()) == {0, 1, 2, 5}
    assert out.ranking()[3] < out.ranking()[2]


def test_a_non_numeric_constraint_is_missing_with_a_warning():
    trial = _trial([1.0])
    trial.system_attrs["constraints:c"] = "high"
    with pytest.warns(UserWarning, match="not a number"):
        out = read_outcomes([trial, _trial([2.0], {"c": 1.0})], [MIN], DEFAULT_TRANSFORM, ["c"])
    assert np.isnan(out.y[0, 1]) and not out.feasible[1]


def test_constraints_func_lists_are_read_too():
    trial = create_trial(value=1.0, params={}, distributions={}, system_attrs={"constraints": (-1.0, 2.0)})
    assert constraint_names([trial]) == ["0", "1"]
    assert not read_outcomes([trial], [MIN], DEFAULT_TRANSFORM, ["0", "1"]).feasible[0]
    assert optuna.__version__  # the format read is Optuna's own (FrozenTrial.constraints)
