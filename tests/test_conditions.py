"""Conditional parameters: the union search space, conditions read from trials, and their encoding."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from metabo.conditions import NO_CONDITIONS, Condition, UnionSearchSpace, infer_conditions
from metabo.space import SearchSpaceEncoder, Subspace

SPACE = {
    "model": CategoricalDistribution(("svm", "rf", "lin")),
    "svm_C": FloatDistribution(1e-3, 1e3, log=True),
    "svm_kernel": CategoricalDistribution(("rbf", "poly")),
    "svm_degree": IntDistribution(2, 5),
    "rf_depth": IntDistribution(1, 20),
    "x": FloatDistribution(0.0, 1.0),
}
TRIALS = [
    {"model": "svm", "svm_C": 1.0, "svm_kernel": "rbf", "x": 0.1},
    {"model": "svm", "svm_C": 10.0, "svm_kernel": "poly", "svm_degree": 3, "x": 0.2},
    {"model": "rf", "rf_depth": 4, "x": 0.3},
    {"model": "lin", "x": 0.4},
]


def test_infer_conditions_finds_parents_and_nesting():
    conditions = infer_conditions(TRIALS, SPACE)
    assert conditions.optional == {"svm_C", "svm_kernel", "svm_degree", "rf_depth"}
    rules = {r.child: r for r in conditions.rules}
    assert rules["svm_C"] == Condition("svm_C", "model", frozenset({0}))
    assert rules["rf_depth"] == Condition("rf_depth", "model", frozenset({1}))
    assert rules["svm_degree"] == Condition("svm_degree", "svm_kernel", frozenset({1}))
    order = [r.child for r in conditions.rules]
    assert order.index("svm_kernel") < order.index("svm_degree")  # a parent's rule first


def test_flat_trials_have_no_conditions():
    assert infer_conditions([{"x": 0.1, "model": "rf"}] * 3, {"x": SPACE["x"], "model": SPACE["model"]}) \
        is NO_CONDITIONS


def test_a_choice_seen_with_and_without_the_child_is_no_condition():
    trials = [{"model": "svm", "svm_C": 1.0}, {"model": "svm"}, {"model": "rf"}]
    conditions = infer_conditions(trials, {"model": SPACE["model"], "svm_C": SPACE["svm_C"]})
    assert conditions.optional == {"svm_C"} and conditions.rules == ()


def test_union_search_space_keeps_conditional_and_drops_changing_distributions():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        trial.suggest_float("x", 0.0, 1.0)
        if trial.number % 2:
            trial.suggest_float("cond", 0.0, 1.0)
        trial.suggest_int("dyn", 0, 3 + trial.number)
        return 0.0

    study.optimize(objective, n_trials=4)
    union = UnionSearchSpace()
    assert list(union.calculate(study)) == ["cond", "x"]
    assert union.conflicting == {"dyn"}


def test_encoder_reads_left_out_parameters_as_zero_and_decodes_active_ones_only():
    encoder = SearchSpaceEncoder(SPACE, infer_conditions(TRIALS, SPACE))
    x = encoder.encode_many(TRIALS)
    widths = dict(zip(encoder.param_names, encoder.param_widths()))
    start, width = widths["rf_depth"]
    assert np.all(x[[0, 1, 3], start : start + width] == 0) and x[2, start] > 0
    start, width = widths["svm_kernel"]
    assert np.all(x[2:, start : start + width] == 0)
    for row, params in zip(x, TRIALS):
        decoded = encoder.decode(row)
        assert decoded.keys() == params.keys()
    with pytest.raises(KeyError, match="'x'"):  # a parameter every trial holds is required
        encoder.encode_many([{"model": "lin"}])


def test_snap_zeroes_what_a_candidate_makes_inactive():
    encoder = SearchSpaceEncoder(SPACE, infer_conditions(TRIALS, SPACE))
    rng = np.random.RandomState(0)
    rows = encoder.snap(rng.rand(200, encoder.n_dims))
    active = encoder.active(rows)
    assert np.all(rows[~active] == 0)
    models = [encoder.decode(r)["model"] for r in rows]
    for row, model in zip(rows, models):
        params = encoder.decode(row)
        assert ("svm_C" in params) == (model == "svm")
        assert ("rf_depth" in params) == (model == "rf")
        assert ("svm_degree" in params) == (model == "svm" and params["svm_kernel"] == "poly")
    assert set(models) == {"svm", "rf", "lin"}
    np.testing.assert_array_equal(encoder.snap(rows), rows)


def test_flat_encoder_and_subspace_are_unconditional():
    encoder = SearchSpaceEncoder({"x": SPACE["x"], "model": SPACE["model"]})
    assert not encoder.is_conditional
    rows = np.random.RandomState(1).rand(5, encoder.n_dims)
    assert not Subspace.full(encoder).inactive(rows).any()
    assert encoder.active(rows).all()
