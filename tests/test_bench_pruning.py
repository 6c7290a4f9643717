"""Pruning in ``metabo bench``: the pruner option reaches the study and the run key, trials' states, steps and
epochs are stored, pruned values never become references, re-proposals are counted, and the report's section."""

from __future__ import annotations

import json

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import RandomSampler

from metabo.bench import build_report, optimizers
from metabo.bench.optimizers import OptimizerSpec
from metabo.bench.problems import select_problems
from metabo.bench.pruners import describe_pruner, make_pruner, run_name, split_run_name
from metabo.bench.report_pruning import load_pruning, pruning_rows
from metabo.bench.reproposals import find_reproposals
from metabo.bench.runner import execute_run, run_benchmark
from metabo.bench.store import ResultStore, RunKey, RunResult, TrialRecord
from metabo.cli import main

TOY = "pruning/toy/d2"


class PrunerSpy(RandomSampler):
    """Random search that records the class of the pruner of every study it is asked to sample for."""

    seen: list[str] = []

    def before_trial(self, study, trial):
        PrunerSpy.seen.append(type(study.pruner).__name__)
        super().before_trial(study, trial)


@pytest.fixture
def spy(monkeypatch):
    PrunerSpy.seen = []
    monkeypatch.setitem(optimizers.REGISTRY, "spy", OptimizerSpec("spy", lambda run: PrunerSpy(seed=run.seed)))
    return PrunerSpy


def test_run_names_carry_the_pruner():
    assert run_name("metabo", "median") == "metabo@median" and run_name("tpe", "none") == "tpe"
    assert split_run_name("metabo@hyperband") == ("metabo", "hyperband")
    assert split_run_name("metabo:/models/a@b.safetensors") == ("metabo:/models/a@b.safetensors", "none")
    assert split_run_name("tpe") == ("tpe", "none")
    with pytest.raises(ValueError, match="unknown pruner"):
        run_name("tpe", "threshold")
    assert describe_pruner("hyperband", 52) == {"name": "hyperband", "class": "HyperbandPruner", "min_resource": 1,
                                                "max_resource": 52, "reduction_factor": 3}
    median = make_pruner("median", 52)
    assert (median._n_startup_trials, median._n_warmup_steps) == (5, 4)


@pytest.mark.parametrize("pruner, expected", [("none", "NopPruner"), ("median", "MedianPruner"),
                                              ("hyperband", "HyperbandPruner")])
def test_the_pruner_option_reaches_the_study_and_the_run_key(tmp_path, spy, pruner, expected):
    store = tmp_path / "r.db"
    status = main(["bench", "--problems", TOY, "--optimizers", "spy", "--pruner", pruner, "--budget", "15",
                   "--seeds", "1", "--store", str(store), "--no-progress"])
    assert status == 0
    assert set(spy.seen) == {expected} and len(spy.seen) == 15
    db = ResultStore(store)
    (run,) = list(db.rows("SELECT optimizer, info_json FROM runs"))
    assert run["optimizer"] == run_name("spy", pruner)
    assert json.loads(run["info_json"])["pruner"]["class"] == expected
    trials = list(db.rows("SELECT * FROM trials ORDER BY trial"))
    assert all(t["state"] in ("COMPLETE", "PRUNED") and t["epochs"] == t["last_step"] for t in trials)
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    pruned = [t for t in trials if t["state"] == "PRUNED"]
    assert all(t["last_step"] == 52 for t in complete) and all(t["last_step"] < 52 for t in pruned)
    assert bool(pruned) == (pruner != "none")  # random points on the toy: both pruners stop some of 15
    best = np.inf
    for t in trials:  # best_so_far: the best complete value
        best = min(best, t["value"]) if t["state"] == "COMPLETE" else best
        assert t["best_so_far"] == best


def test_runs_with_different_pruners_never_mix(tmp_path):
    store = tmp_path / "r.db"
    problems = select_problems(TOY)
    for pruner in ("none", "median", "hyperband"):
        counts = run_benchmark(["random"], problems, range(1), 8, store, progress=False, pruner=pruner)
        assert counts["done"] == 1 and counts["skipped"] == 0  # a run with another pruner is a different run
    names = {r["optimizer"] for r in ResultStore(store).rows("SELECT optimizer FROM runs")}
    assert names == {"random", "random@median", "random@hyperband"}


def test_a_pruner_needs_iterative_problems(tmp_path, capsys):
    with pytest.raises(ValueError, match="needs iterative problems"):
        run_benchmark(["random"], select_problems("constrained/gardner"), range(1), 3, tmp_path / "r.db",
                      progress=False, pruner="median")
    status = main(["bench", "--problems", "constrained/gardner", "--optimizers", "random", "--pruner", "hyperband",
                   "--budget", "2", "--seeds", "1", "--store", str(tmp_path / "r.db"), "--no-progress"])
    assert status == 2 and "needs iterative problems" in capsys.readouterr().err


def test_hyperband_runs_are_reproducible():
    # Optuna draws a trial's bracket from a hash of the study name: the runner names the study after problem and seed
    key = RunKey(run_name("random", "hyperband"), TOY, 3, 30)
    first, second = execute_run(key), execute_run(key)
    assert [(t.state, t.last_step) for t in first.trials] == [(t.state, t.last_step) for t in second.trials]
    assert {t.state for t in first.trials} == {"COMPLETE", "PRUNED"}


# --- re-proposals ------------------------------------------------------------------------------------------------

def test_reproposals_count_points_near_earlier_pruned_ones_and_exact_duplicates():
    space = {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(1, 5), "c": CategoricalDistribution(("a", "b"))}
    params = [
        {"x": 0.50, "n": 2, "c": "a"},   # 0: pruned
        {"x": 0.505, "n": 2, "c": "a"},  # 1: 0.005 from pruned 0 -> near
        {"x": 0.515, "n": 2, "c": "a"},  # 2: 0.015 from 0 (too far), 0.01 from 1 (not pruned) -> neither
        {"x": 0.20, "n": 4, "c": "b"},   # 3: complete
        {"x": 0.20, "n": 4, "c": "b"},   # 4: exact copy of complete 3 -> duplicate, not near a pruned point
        {"x": 0.50, "n": 2, "c": "a"},   # 5: exact copy of pruned 0 -> near and duplicate
        {"x": 0.50, "n": 2, "c": "b"},   # 6: another category than 0 -> neither
        {"x": 0.50, "n": 3, "c": "a"},   # 7: another integer (a fifth of the cube away) -> neither
        {"x": 0.30, "n": 1, "c": "a"},   # 8: pruned, but nothing comes after it
    ]
    pruned = [True, False, False, False, False, False, False, False, True]
    found = find_reproposals(space, params, pruned)
    assert found.near_pruned.tolist() == [False, True, False, False, False, True, False, False, False]
    assert found.duplicate.tolist() == [False, False, False, False, True, True, False, False, False]
    assert found.counts(5) == (1, 1) and found.counts(9) == (2, 2)
    assert find_reproposals(space, params, [False] * 9).near_pruned.sum() == 0  # nothing pruned: nothing near


def _trial(i, x, state, value, epochs):
    return TrialRecord(i, value, value, 0.0, params={"x0": x, "x1": 0.5}, state=state, last_step=epochs,
                       epochs=epochs)


@pytest.fixture
def fake_store(tmp_path):
    """pruning/toy/d2 (f_opt 0.1, random median 0.3) run by metabo and tpe under the median pruner, and by tpe
    without one; metabo comes back to its pruned point twice (once exactly), never completing before trial 2."""
    db = ResultStore(tmp_path / "fake.db")
    db.put_problem(TOY, 2, 0.1, 0.3, exact=True, kind="iterative", f_opt_source="known optimum",
                   random_median_source="made up")
    runs = {
        "metabo@median": [_trial(0, 0.9, "PRUNED", 0.05, 4), _trial(1, 0.905, "PRUNED", 0.06, 4),
                          _trial(2, 0.2, "COMPLETE", 0.2, 52), _trial(3, 0.9, "COMPLETE", 0.15, 52)],
        "tpe@median": [_trial(0, 0.9, "COMPLETE", 0.25, 52), _trial(1, 0.1, "PRUNED", 0.3, 6),
                       _trial(2, 0.5, "PRUNED", 0.3, 9), _trial(3, 0.7, "COMPLETE", 0.12, 52)],
        "tpe": [_trial(i, 0.1 * i, "COMPLETE", 0.3 - 0.05 * i, 52) for i in range(4)],
    }
    for name, trials in runs.items():
        best = np.inf
        for t in trials:
            best = min(best, t.value) if t.state == "COMPLETE" else best
            t.best_so_far = best
        db.put_run(RunResult(RunKey(name, TOY, 0, 4), trials, None, 1.0, "now"))
    return db.path


def test_pruned_values_never_become_references(fake_store):
    db = ResultStore(fake_store)
    db.put_problem("pruning/toy/d3", 3, 0.5, 0.9, exact=False, kind="iterative")  # an inexact reference
    db.put_run(RunResult(RunKey("tpe@median", "pruning/toy/d3", 0, 2),
                         [_trial(0, 0.1, "PRUNED", 0.01, 4), _trial(1, 0.2, "COMPLETE", 0.6, 52)], None, 1.0, "now"))
    assert db.references()["pruning/toy/d3"]["f_opt"] == 0.5  # not 0.01 (pruned), and 0.6 is no better


def test_pruning_rows_on_a_fake_store(fake_store):
    by_pruner = {pr.pruner: pr for pr in load_pruning(fake_store)}
    assert list(by_pruner) == ["none", "median"]
    median = by_pruner["median"]
    assert median.curves.optimizers == ["metabo", "tpe"]
    pair = (TOY, 0)
    np.testing.assert_allclose(median.curves.best["metabo"][pair], [1.0, 1.0, 0.5, 0.25])  # 1 before a complete
    np.testing.assert_allclose(median.epochs["metabo"][pair], [4, 8, 60, 112])
    np.testing.assert_allclose(median.near_pruned["metabo"][pair], [0, 1, 1, 2])  # 0.905 and 0.9 again
    np.testing.assert_allclose(median.duplicates["metabo"][pair], [0, 0, 0, 1])
    rows = {(r.optimizer, r.budget): r for r in pruning_rows(median, [2, 4], n_boot=20)}
    m2, m4, t4 = rows[("metabo", 2)], rows[("metabo", 4)], rows[("tpe", 4)]
    assert (m2.regret, m2.epochs, m2.pruned_fraction, m2.near_pruned, m2.duplicates) == (1.0, 8.0, 1.0, 1.0, 0.0)
    assert (m4.epochs, m4.pruned_fraction, m4.near_pruned, m4.duplicates) == (112.0, 0.5, 2.0, 1.0)
    assert m4.regret == pytest.approx(0.25)
    assert t4.regret == pytest.approx(0.1) and t4.epochs == 119.0 and t4.pruned_fraction == 0.5
    assert t4.near_pruned == 0.0 and m4.rank == 2.0 and t4.rank == 1.0


def test_report_has_a_pruning_section_with_paired_differences_per_pruner(fake_store, tmp_path):
    report = build_report(fake_store, [2, 4], tmp_path / "out", n_boot=20, baseline="tpe")
    text = report.markdown_path.read_text()
    assert "## Iterative problems with pruners" in text and "**1 while no trial has completed**" in text
    assert "| median | all | 4 | 1 | metabo | 0.2500 [0.2500, 0.2500] | 2.00 | 112.0 [112.0, 112.0] | 0.500 " \
           "| 2.00 (2) | 1.00 |" in text
    assert "### Paired differences from tpe (pruner median)" in text
    assert "| all | 4 | 1 | metabo | 0.1500 [0.1500, 0.1500] | 0 / 1 |" in text
    assert "pruner none" not in text  # tpe alone without a pruner: nothing to pair
    assert "| pruning/toy/d2 | 0.1 | known optimum | 0.3 | made up |" in text
    assert report.rows == [] and "## Optimiser health" in text and "| metabo@median | 1 | 4 |" in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {r["pruner"] for r in summary["pruning"]["rows"]} == {"none", "median"}
    only = build_report(fake_store, [4], tmp_path / "only", n_boot=20, optimizers=["metabo"])
    assert {r.optimizer for r in only.pruning.rows} == {"metabo"}
