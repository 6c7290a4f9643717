"""Iterative problems (``pruning/...``): the curve is reported step by step, the pruner is asked, pruning stops the
trial where it is told; names, splits and the lcbench surrogate's values."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.pruners import BasePruner, NopPruner
from optuna.trial import TrialState

from metabo.bench.problems import get_problem, kind_of, select_problems
from metabo.bench.problems.iterative import iterate
from metabo.bench.problems.pruning import REPORT_EPOCHS, ToyCurveProblem, report_steps
from metabo.meta import yahpo


class PruneFrom(BasePruner):
    """Prunes every trial once it has reported step ``step`` or later; counts the questions it was asked."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.asked: list[int] = []

    def prune(self, study, trial) -> bool:
        self.asked.append(trial.last_step)
        return trial.last_step >= self.step


def _study(pruner: BasePruner) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner)


def test_report_steps_hold_hyperband_rungs_and_end_at_the_last_epoch():
    assert report_steps(52) == REPORT_EPOCHS == (1, 2, 3, 4, 6, 9, 13, 18, 27, 39, 52)
    assert {1, 3, 9, 27} <= set(REPORT_EPOCHS)  # min_resource 1, reduction factor 3
    assert report_steps(20) == (1, 2, 3, 4, 6, 9, 13, 18, 20)
    assert report_steps(1) == (1,)


def test_toy_reports_its_whole_curve_and_completes_without_a_pruner():
    problem = get_problem("pruning/toy/d3")
    assert kind_of(problem) == "iterative" and problem.dim == 3
    study = _study(NopPruner())
    study.optimize(problem.objective, n_trials=3)
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert sorted(t.intermediate_values) == list(problem.steps)
        np.testing.assert_allclose([t.intermediate_values[s] for s in problem.steps], problem.curve(t.params))
        assert t.value == problem.evaluate(t.params) == t.intermediate_values[52]


def test_toy_prunes_when_told_and_never_asks_after_the_last_epoch():
    problem = ToyCurveProblem(2)
    pruner = PruneFrom(6)
    study = _study(pruner)
    study.optimize(problem.objective, n_trials=2)
    for t in study.trials:
        assert t.state == TrialState.PRUNED
        assert sorted(t.intermediate_values) == [1, 2, 3, 4, 6]  # stopped at the first step the pruner said so
        assert t.value == t.intermediate_values[6] == pytest.approx(problem.curve_at(t.params, [6])[0])
    assert pruner.asked == [1, 2, 3, 4, 6] * 2

    always = PruneFrom(1)
    trial = _study(always).ask(problem.search_space())
    outcome = iterate(problem, trial)
    assert (outcome.pruned, outcome.last_step, outcome.epochs, outcome.state) == (True, 1, 1, "PRUNED")

    late = PruneFrom(52)  # asked at every step but the last: a trial that trained every epoch completes
    trial = _study(late).ask(problem.search_space())
    outcome = iterate(problem, trial)
    assert (outcome.pruned, outcome.last_step, outcome.epochs, outcome.state) == (False, 52, 52, "COMPLETE")
    assert 52 not in late.asked and late.asked[-1] == 39


def test_toy_has_its_known_optimum_and_misleading_early_values():
    problem = ToyCurveProblem(3)
    best = problem.optimiser_params()
    assert problem.evaluate(best) == pytest.approx(problem.known_optimum)
    fast = {**best, "x0": 0.0}  # learns fast, ends worse
    assert problem.evaluate(fast) > problem.evaluate(best)
    assert problem.curve_at(fast, [4])[0] < problem.curve_at(best, [4])[0]
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = {f"x{i}": float(v) for i, v in enumerate(rng.random(3))}
        assert problem.evaluate(x) >= problem.known_optimum
        assert np.all(np.diff(problem.curve(x)) <= 0)  # a learning curve: never worse with more epochs


def _yahpo_reason() -> str | None:
    return yahpo.unavailable_reason("lcbench")


needs_yahpo = pytest.mark.skipif(_yahpo_reason() is not None, reason=str(_yahpo_reason()))


@needs_yahpo
def test_lcbench_family_lists_the_seven_validation_instances_and_refuses_others():
    names = [p.name for p in select_problems("pruning/lcbench/*")]
    assert names == sorted(f"pruning/lcbench/{i}" for i in yahpo.instances("lcbench", ("validation",)))
    assert len(names) == 7
    train = yahpo.instances("lcbench", ("train",))[0]
    with pytest.raises(PermissionError, match="only validation instances"):
        get_problem(f"pruning/lcbench/{train}")
    reserved = yahpo.instances("lcbench", ("reserved",))[0]
    with pytest.raises(PermissionError):
        get_problem(f"pruning/lcbench/{reserved}")
    with pytest.raises(ValueError, match="1 to 52"):
        get_problem(f"{names[0]}_e53")


@needs_yahpo
def test_lcbench_reports_validation_error_by_epoch_ending_at_the_full_fidelity_value():
    instance = yahpo.instances("lcbench", ("validation",))[0]
    problem = get_problem(f"pruning/lcbench/{instance}")
    full = get_problem(f"yahpo/lcbench/{instance}")  # minimises -val_accuracy (percent) at epoch 52
    study = _study(NopPruner())
    study.optimize(problem.objective, n_trials=3)
    for t in study.trials:
        assert t.state == TrialState.COMPLETE and sorted(t.intermediate_values) == list(REPORT_EPOCHS)
        assert t.value == pytest.approx(1.0 + full.evaluate(t.params) / 100.0, abs=1e-6)
        curve = np.array([t.intermediate_values[s] for s in REPORT_EPOCHS])
        assert np.all((0 <= curve) & (curve <= 1)) and curve[0] > curve[-1]  # an error rate that learning lowers
    short = get_problem(f"pruning/lcbench/{instance}_e27")
    assert short.name.endswith("_e27") and short.steps[-1] == short.max_step == 27
    params = study.trials[0].params
    assert short.evaluate(params) == pytest.approx(study.trials[0].intermediate_values[27], abs=1e-6)
    assert not math.isclose(short.evaluate(params), problem.evaluate(params))

    pruned = _study(PruneFrom(4))
    pruned.optimize(problem.objective, n_trials=2)
    assert all(t.state == TrialState.PRUNED and t.last_step == 4 for t in pruned.trials)
