"""Subspaces of wide spaces drawn by the model's sensitivity to each parameter (``metabo.sensitivity``)."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from metabo import context as ctx
from metabo.sensitivity import FLOOR, parameter_sensitivity, prediction_sensitivity, subspace_weights
from metabo.space import SearchSpaceEncoder


def test_weights_are_uniform_before_any_measurement_and_optimistic_for_unmeasured_parameters():
    assert subspace_weights({}, ["a", "b"]) is None
    assert subspace_weights({"a": 0.0}, ["a", "b"]) is None
    weights = subspace_weights({"a": 2.0, "b": 0.0, "z": 9.0}, ["a", "b", "c"])
    assert weights == {"a": 2.0, "b": FLOOR * 2.0, "c": 2.0}  # z is not in this space


def test_weighted_subspaces_favour_heavy_parameters_and_keep_whole_ones():
    space = {f"x{i}": FloatDistribution(0, 1) for i in range(10)}
    space["c"] = CategoricalDistribution(("a", "b", "c"))
    enc = SearchSpaceEncoder(space)
    weights = {name: 1.0 for name in enc.param_names}
    weights["x7"] = 1000.0
    counts = dict.fromkeys(enc.param_names, 0)
    for seed in range(200):
        dims = enc.random_subspace_dims(4, np.random.RandomState(seed), weights)
        assert len(dims) <= 4
        np.testing.assert_array_equal(dims, enc.random_subspace_dims(4, np.random.RandomState(seed), weights))
        for name, _, _ in enc.param_slots(dims):
            counts[name] += 1
    assert counts["x7"] == 200
    assert min(counts[f"x{i}"] for i in range(10) if i != 7) > 20  # the others still come up


def test_param_slots_are_in_the_subspaces_own_coordinates():
    enc = SearchSpaceEncoder({"a": FloatDistribution(0, 1), "b": CategoricalDistribution(("p", "q")),
                              "c": FloatDistribution(0, 1)})
    assert enc.param_slots(np.array([1, 2, 3])) == [("b", 0, 2), ("c", 2, 1)]
    assert parameter_sensitivity(np.array([0.5, 0.25, 2.0]), enc.param_slots(np.array([1, 2, 3]))) == \
        {"b": 0.75, "c": 2.0}


def test_prediction_sensitivity_is_one_finite_value_per_input(tiny_model):
    rng = np.random.RandomState(0)
    x = rng.rand(40, 3)
    y = np.sin(6 * x[:, 0])
    cache = ctx.encode(tiny_model, ctx.join(None, x, (y - y.mean()) / y.std()))
    sensitivity = prediction_sensitivity(tiny_model, cache, x)
    assert sensitivity.shape == (3,) and np.all(np.isfinite(sensitivity)) and np.all(sensitivity >= 0)
    assert prediction_sensitivity(tiny_model, cache, x[:0]).shape == (3,)


def test_a_wide_study_measures_sensitivity_and_draws_subspaces_by_it(tiny_model):
    import metabo
    from metabo.acquisition import CandidateSearchConfig

    n = tiny_model.cfg.max_dims + 6
    sampler = metabo.TNPSampler(model=tiny_model, seed=0, search=CandidateSearchConfig(n_candidates=128, refine_steps=1))
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: sum(t.suggest_float(f"x{i:02d}", 0, 1) ** 2 for i in range(n)), n_trials=7)
    assert 0 < len(sampler._sensitivity) <= n
    assert all(np.isfinite(v) and v >= 0 for v in sampler._sensitivity.values())
