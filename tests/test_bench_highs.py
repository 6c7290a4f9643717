"""The HiGHS MIP tuning problems: instance streams, option types, deterministic cost, penalties, pickling."""

from __future__ import annotations

import math
import pickle

import numpy as np
import optuna
import pytest

from metabo.bench.problems import highs_mip as hm

highspy = pytest.importorskip("highspy")

DEFAULTS = {"presolve": "on", "mip_heuristic_effort": 0.05, "mip_detect_symmetry": True, "mip_allow_restart": True,
            "mip_allow_cut_separation_at_nodes": True, "mip_heuristic_run_feasibility_jump": True,
            "mip_lp_age_limit": 10, "mip_pool_age_limit": 30, "mip_pool_soft_limit": 10000,
            "mip_pscost_minreliable": 8}


def _random_params(seed: int) -> dict:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return study.ask(hm.HighsProblem("knapsack", 0).search_space()).params


def test_names_form_a_stream_per_generator():
    names = [p.name for p in hm.problems()]
    assert len(names) == len(set(names)) == len(hm.GENERATORS) * hm.N_INSTANCES
    assert "highs/setcover/0" in names and f"highs/facility/{hm.N_INSTANCES - 1}" in names
    p = hm.HighsProblem("setcover", 3)
    assert (p.family, p.dim, p.known_optimum) == ("highs", len(hm.SEARCH_SPACE), None)
    with pytest.raises(ValueError):
        hm.HighsProblem("nope", 0)
    assert hm.get_problem("highs/knapsack/57") == hm.HighsProblem("knapsack", 57)  # beyond the default stream
    for bad in ("highs/nope/1", "highs/knapsack/x", "bbob/knapsack/1", "highs/knapsack"):
        with pytest.raises(KeyError):
            hm.get_problem(bad)
    assert hm.available()


def test_search_space_matches_highs_option_types():
    h = highspy.Highs()
    for name, dist in hm.HighsProblem("knapsack", 0).search_space().items():
        value = DEFAULTS[name]
        assert dist._contains(dist.to_internal_repr(value)), name
        assert h.setOptionValue(name, hm._highs_value(dist, value)) == highspy.HighsStatus.kOk, name
    for low_high in ("low", "high"):  # the ends of every numeric range are legal HiGHS values
        for name, dist in hm.SEARCH_SPACE.items():
            if hasattr(dist, low_high):
                v = hm._highs_value(dist, getattr(dist, low_high))
                assert h.setOptionValue(name, v) == highspy.HighsStatus.kOk, (name, v)


def test_instances_are_seeded_and_differ_along_the_stream():
    a, b, c = hm.generate("setcover", 0), hm.generate("setcover", 0), hm.generate("setcover", 1)
    assert a is b  # cached
    hm.generate.cache_clear()
    again = hm.generate("setcover", 0)
    assert np.array_equal(again.value, a.value) and np.array_equal(again.index, a.index)
    assert not (len(c.index) == len(a.index) and np.array_equal(c.index, a.index))


@pytest.mark.parametrize("generator", list(hm.GENERATORS))
def test_default_options_solve_to_optimality(generator):
    result = hm.solve(hm.generate(generator, 0), DEFAULTS)
    assert result.optimal and result.gap <= 1e-3 and result.simplex_iterations > 0
    assert hm.cost_of(result) == pytest.approx(math.log10(1 + result.simplex_iterations + 10 * result.nodes))


@pytest.mark.parametrize("problem", [hm.HighsProblem("knapsack", 2), hm.HighsProblem("facility", 1)],
                         ids=lambda p: p.name)
def test_evaluate_is_deterministic_and_finite(problem):
    params = _random_params(seed=problem.instance)
    first = problem.evaluate(params)
    assert math.isfinite(first) and first > 0
    assert problem.evaluate(params) == first


def test_unsolved_runs_pay_the_penalty():
    solved = hm.SolveResult(True, 10, 900, 0.0, 1.0)
    stopped = hm.SolveResult(False, 10, 900, 0.25, 1.0)
    no_incumbent = hm.SolveResult(False, 10, 900, math.inf, math.nan)
    assert hm.cost_of(stopped) == pytest.approx(hm.cost_of(solved) + 1.25)
    assert hm.cost_of(no_incumbent) == pytest.approx(hm.cost_of(solved) + 2.0)


def test_node_limit_is_reported_as_unsolved(monkeypatch):
    monkeypatch.setattr(hm, "NODE_LIMIT", 1)
    result = hm.solve(hm.generate("knapsack", 1), {**DEFAULTS, "presolve": "off", "mip_heuristic_effort": 0.001})
    assert not result.optimal and result.nodes <= 2
    assert hm.cost_of(result) > math.log10(1 + result.simplex_iterations + 10 * result.nodes) + 1


def test_problems_pickle_and_compare_equal():
    for p in hm.problems():
        clone = pickle.loads(pickle.dumps(p))
        assert clone == p and clone.name == p.name
