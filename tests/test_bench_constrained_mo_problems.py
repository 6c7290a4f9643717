"""Constrained and multi-objective benchmark problems: definitions, known optima and fronts, names, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metabo.bench.hypervolume import normalised_hypervolume_regret
from metabo.bench.problems import evaluate_outcome, family_available, get_problem, kind_of, select_problems
from metabo.bench.problems.constrained import CLASSIC
from metabo.bench.reference import sample_configs


def _yahpo_reason() -> str | None:
    from metabo.bench.problems import mo_yahpo

    return None if mo_yahpo.available() else "YAHPO data or onnxruntime absent"


needs_yahpo = pytest.mark.skipif(_yahpo_reason() is not None, reason=str(_yahpo_reason()))


# --- constrained ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(CLASSIC))
def test_classic_problem_reaches_its_known_optimum_at_its_optimiser(key):
    problem = CLASSIC[key]
    outcome = problem.evaluate_outcome(problem.optimiser_params())
    assert outcome.feasible and len(outcome.constraints) == len(problem.constraint_names)
    assert outcome.values[0] == pytest.approx(problem.known_optimum, rel=1e-12, abs=1e-12)
    assert problem.evaluate(problem.optimiser_params()) == outcome.values[0]
    # no feasible random point beats the optimum
    space = problem.search_space()
    assert all(space[n].low <= v <= space[n].high for n, v in problem.optimiser_params().items())
    outcomes = [problem.evaluate_outcome(c) for c in sample_configs(space, 2000, 1)]
    feasible = [o.values[0] for o in outcomes if o.feasible]
    assert feasible and min(feasible) >= problem.known_optimum
    assert any(not o.feasible for o in outcomes)  # the constraint matters somewhere


def test_classic_definitions_match_published_values():
    # the published best points (rounded to 6 digits, so within ~1e-5 of the optima and nearly feasible)
    beam = CLASSIC["welded_beam"].evaluate_outcome({"h": 0.205730, "l": 3.470489, "t": 9.036624, "b": 0.205730})
    assert beam.values[0] == pytest.approx(1.724852, abs=1e-5) and max(beam.constraints) < 1e-4
    vessel = CLASSIC["pressure_vessel"].evaluate_outcome({"Ts": 0.778169, "Th": 0.384649, "R": 40.319619, "L": 200})
    assert vessel.values[0] == pytest.approx(5885.3328, rel=1e-5) and max(vessel.constraints) < 1e-5
    branin = CLASSIC["branin_disc"]
    for x0, x1 in ((-math.pi, 12.275), (9.42478, 2.475)):  # Branin's other two minimisers lie outside the disc
        other = branin.evaluate_outcome({"x0": x0, "x1": x1})
        assert other.values[0] == pytest.approx(0.397887, abs=1e-5) and not other.feasible
    gardner = CLASSIC["gardner"].evaluate_outcome({"x0": 3 * math.pi / 2, "x1": 0.0})
    assert gardner.values[0] == pytest.approx(-2.0) and gardner.constraints[0] == pytest.approx(-0.5)


def test_random_forest_size_problem_is_deterministic_with_an_active_budget():
    from metabo.bench.problems.sklearn_tuning import SklearnProblem

    problem = get_problem("constrained/rf_digits_nodes")
    assert kind_of(problem) == "constrained" and problem.known_optimum is None
    deep = {"max_depth": 16, "max_features": 0.3, "min_samples_split": 2, "min_samples_leaf": 1, "bootstrap": True}
    shallow = {**deep, "max_depth": 3}
    a, b = problem.evaluate_outcome(deep), problem.evaluate_outcome(deep)
    assert a == b  # deterministic, objective and constraint
    assert a.values[0] == SklearnProblem("rf", "digits", "error").evaluate(deep)  # the sklearn family's objective
    assert not a.feasible and problem.evaluate_outcome(shallow).feasible
    assert a.values[0] < problem.evaluate_outcome(shallow).values[0]  # the budget costs accuracy


# --- multi-objective -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mo/zdt1_d6", "mo/zdt2_d6", "mo/zdt3_d6", "mo/dtlz2_m2_d6", "mo/dtlz2_m3_d7"])
def test_test_function_optimal_points_lie_on_the_reference_front(name):
    problem = get_problem(name)
    assert kind_of(problem) == "multi" and problem.dim == int(name.rsplit("_d", 1)[1])
    ts = np.linspace(0, 1, 101)
    points = np.array([evaluate_outcome(problem, problem.optimal_params(t)).values for t in ts])
    if name.startswith("mo/zdt1"):
        np.testing.assert_allclose(points[:, 1], 1 - np.sqrt(points[:, 0]), atol=1e-12)
    elif name.startswith("mo/zdt2"):
        np.testing.assert_allclose(points[:, 1], 1 - points[:, 0] ** 2, atol=1e-12)
    elif name.startswith("mo/dtlz2"):
        np.testing.assert_allclose((points**2).sum(1), 1.0, atol=1e-12)
    hv = problem.reference_hypervolume()
    # a dense set of optimal points nearly attains the reference hypervolume; a worse set does not
    if problem.n_objectives == 2:
        dense = np.array([evaluate_outcome(problem, problem.optimal_params(t)).values for t in np.linspace(0, 1, 4001)])
    else:
        grid = np.linspace(0, 1, 61)
        dense = np.array([problem.objectives(np.r_[a, b, [0.5] * (problem.dim - 2)]) for a in grid for b in grid])
    regret = normalised_hypervolume_regret(dense, problem.ideal, problem.nadir, problem.reference_point, hv)
    assert 0 <= regret < (0.001 if problem.n_objectives == 2 else 0.02)  # a 61 x 61 grid of the sphere: coarser
    worse = dense * 1.2 + 0.05 * (np.asarray(problem.nadir) - np.asarray(problem.ideal))
    assert normalised_hypervolume_regret(worse, problem.ideal, problem.nadir, problem.reference_point, hv) > 0.1


def test_known_reference_hypervolumes_and_zdt3_bounds():
    assert get_problem("mo/zdt1_d6").reference_hypervolume() == pytest.approx(1.21 - 1 / 3)
    assert get_problem("mo/dtlz2_m3_d7").reference_hypervolume() == pytest.approx(1.331 - math.pi / 6)
    zdt3 = get_problem("mo/zdt3_d6")
    assert zdt3.ideal == pytest.approx((0.0, -0.773369), abs=1e-5)  # the published ZDT3 front's extent
    assert zdt3.nadir == pytest.approx((0.851835, 1.0), abs=1e-5)


def test_names_and_registry():
    assert get_problem("mo/zdt2_d4").dim == 4
    assert get_problem("mo/dtlz2_m3_d12").n_objectives == 3
    for bad in ("mo/zdt1_d1", "mo/zdt4_d6", "mo/dtlz2_m4_d7", "mo/dtlz2_m3_d2", "constrained/nope"):
        with pytest.raises(KeyError):
            get_problem(bad)
    assert family_available("constrained") and family_available("mo")
    names = [p.name for p in select_problems("constrained/*")]
    assert names == sorted(["constrained/branin_disc", "constrained/gardner", "constrained/pressure_vessel",
                            "constrained/rf_digits_nodes", "constrained/welded_beam"])
    assert {kind_of(p) for p in select_problems("mo/zdt*,mo/dtlz*")} == {"multi"}
    assert kind_of(get_problem("bbob/f01_i1_d2")) == "single"


# --- the YAHPO multi-objective problem -----------------------------------------------------------------------------

@needs_yahpo
def test_yahpo_problem_is_validation_only_and_deterministic(monkeypatch):
    from metabo.bench.problems import mo_yahpo
    from metabo.meta import yahpo

    problem = get_problem("mo/rbv2_xgboost_31")
    assert problem.split == "validation" and kind_of(problem) == "multi"
    assert "mo/rbv2_xgboost_31" in [p.name for p in select_problems("mo/*")]
    for split in ("train", "reserved"):
        instance = yahpo.instances("rbv2_xgboost", [split])[0]
        with pytest.raises(PermissionError):
            get_problem(f"mo/rbv2_xgboost_{instance}")
    config = sample_configs(problem.search_space(), 1, 0)[0]
    a = evaluate_outcome(problem, config)
    assert a == evaluate_outcome(problem, config) and len(a.values) == 2 and 0 <= a.values[0] <= 1
    # a small reference front (the real one takes seconds): non-dominated and dominating most random points
    monkeypatch.setattr(mo_yahpo, "REFERENCE_RANDOM", 2000)
    monkeypatch.setattr(mo_yahpo, "REFERENCE_ROUNDS", 1)
    monkeypatch.setattr(mo_yahpo, "REFERENCE_BATCH", 500)
    mo_yahpo._reference_front.cache_clear()
    try:
        front = problem.reference_front()
        assert len(front) >= 3 and problem.reference_hypervolume() > 0
        others = problem.objectives_many(sample_configs(problem.search_space(), 200, 5))
        regret = normalised_hypervolume_regret(others, problem.ideal, problem.nadir, problem.reference_point,
                                               problem.reference_hypervolume())
        assert 0 < regret <= 1
    finally:
        mo_yahpo._reference_front.cache_clear()
