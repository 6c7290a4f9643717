"""Constrained and multi-objective runs: what the runner stores, and the report's columns on a tiny fake store."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from optuna.samplers import RandomSampler

from metabo.bench import build_report, optimizers
from metabo.bench.optimizers import OptimizerSpec
from metabo.bench.problems import select_problems
from metabo.bench.report import load_curves
from metabo.bench.report_kinds import load_kind_curves
from metabo.bench.runner import run_benchmark
from metabo.bench.store import ResultStore, RunKey, RunResult, TrialRecord


class SingleObjectiveOnly(RandomSampler):
    """Raises on multi-objective studies, as TNPSampler did before it supported them."""

    def infer_relative_search_space(self, study, trial):
        if study._is_multi_objective():
            raise ValueError("single-objective studies only")
        return super().infer_relative_search_space(study, trial)


def test_runner_stores_objective_vectors_constraints_and_feasibility(tmp_path, monkeypatch):
    monkeypatch.setitem(optimizers.REGISTRY, "single-only",
                        OptimizerSpec("single-only", lambda run: SingleObjectiveOnly(seed=run.seed)))
    store = tmp_path / "r.db"
    problems = select_problems("constrained/gardner,mo/zdt1_d4")
    counts = run_benchmark(["random", "tpe", "nsgaii", "single-only", "hebo"], problems, range(1), 8, store,
                           progress=False)
    # hebo's adapter is single-objective and unconstrained: not built, nothing stored; single-only raises on the
    # multi-objective study: stored with errors (random stood in), not complete
    assert counts == {"planned": 10, "skipped": 0, "done": 7, "with_errors": 1, "failed": 2}
    db = ResultStore(store)
    assert {r["optimizer"] for r in db.rows("SELECT optimizer FROM runs")} == {"random", "tpe", "nsgaii", "single-only"}
    assert RunKey("single-only", "mo/zdt1_d4", 0, 8) not in db.complete_keys()
    rows = list(db.rows("SELECT * FROM trials WHERE problem = 'constrained/gardner' AND optimizer = 'tpe' "
                        "ORDER BY trial"))
    best = np.inf
    for r in rows:
        constraints = json.loads(r["constraints_json"])
        assert list(constraints) == ["angle"] and json.loads(r["values_json"]) == [r["value"]]
        assert bool(r["feasible"]) == (constraints["angle"] <= 0)
        best = min(best, r["value"]) if r["feasible"] else best
        assert r["best_so_far"] == best  # the best feasible value (inf before the first)
    mo = list(db.rows("SELECT values_json, feasible, constraints_json FROM trials WHERE problem = 'mo/zdt1_d4'"))
    assert all(len(json.loads(r["values_json"])) == 2 and r["feasible"] is None and r["constraints_json"] is None
               for r in mo)
    kinds = {n: r["kind"] for n, r in db.problem_rows().items()}
    assert kinds == {"constrained/gardner": "constrained", "mo/zdt1_d4": "multi"}
    assert db.problem_row("mo/zdt1_d4")["reference"]["reference_hypervolume"] == pytest.approx(1.21 - 1 / 3)


def _trials(values, feasible=None, vectors=None):
    out = []
    for i, v in enumerate(values):
        ok = None if feasible is None else feasible[i]
        out.append(TrialRecord(i, v, v, 0.0, values=tuple(vectors[i]) if vectors is not None else (v,),
                               constraints=None if ok is None else {"c": -1.0 if ok else 1.0}, feasible=ok))
    return out


def _put(db, optimizer, problem, trials):
    db.put_run(RunResult(RunKey(optimizer, problem, 0, len(trials)), trials, None, 1.0, "now"))


@pytest.fixture
def fake_store(tmp_path):
    """A constrained problem (f_opt 0, feasible median 10) and a multi-objective one (reference HV 1 in the box
    up to (2, 2)), each run by optimisers a and b for 3 evaluations, plus one BBOB-like single-objective run."""
    db = ResultStore(tmp_path / "fake.db")
    db.put_problem("constrained/fake", 2, 0.0, 10.0, exact=True, kind="constrained", f_opt_source="known optimum",
                   random_median_source="made up")
    _put(db, "a", "constrained/fake", _trials([5.0, 8.0, 2.0], [False, True, True]))
    _put(db, "b", "constrained/fake", _trials([-1.0, 0.5, 3.0], [False, False, False]))
    db.put_problem("mo/fake", 3, 0.0, 1.0, exact=True, kind="multi",
                   reference={"objectives": ["f1", "f2"], "ideal": [0, 0], "nadir": [1, 1],
                              "reference_point": [2, 2], "reference_hypervolume": 1.0, "source": "made up"})
    _put(db, "a", "mo/fake", _trials([0, 0, 0], vectors=[[3, 0], [1.5, 1.5], [1, 1]]))  # HV 0, 0.25, 1
    _put(db, "b", "mo/fake", _trials([0, 0, 0], vectors=[[1.5, 1.0], [1.0, 1.5], [3, 3]]))  # HV 0.5, 0.75, 0.75
    return db.path


def test_kind_curves_of_a_fake_store(fake_store):
    constrained = load_kind_curves(fake_store, "constrained")
    pair = ("constrained/fake", 0)
    np.testing.assert_allclose(constrained.curves.best["a"][pair], [1.0, 0.8, 0.2])
    np.testing.assert_allclose(constrained.curves.best["b"][pair], [1.0, 1.0, 1.0])  # never feasible: regret 1
    np.testing.assert_allclose(constrained.feasible["a"][pair], [0.0, 0.5, 2 / 3])
    multi = load_kind_curves(fake_store, "multi")
    np.testing.assert_allclose(multi.curves.best["a"][("mo/fake", 0)], [1.0, 0.75, 0.0])
    np.testing.assert_allclose(multi.curves.best["b"][("mo/fake", 0)], [0.5, 0.25, 0.25])
    assert load_curves(fake_store).best == {}  # the single-objective report leaves both kinds alone


def test_report_columns_on_a_fake_store(fake_store, tmp_path):
    report = build_report(fake_store, [2, 3], tmp_path / "out", n_boot=50, baseline="b")
    text = report.markdown_path.read_text()
    assert "## Constrained problems" in text and "## Multi-objective problems" in text
    assert "**A run with no feasible trial yet counts as regret 1**" in text
    assert ("| group | evaluations | pairs | optimiser | mean regret of best feasible [95% CI] | average rank [95% CI] "
            "| feasible trials [95% CI] | no feasible trial |") in text
    assert "| all | 3 | 1 | a | 0.2000 [0.2000, 0.2000] | 1.00 [1.00, 1.00] | 0.667 [0.667, 0.667] | 0 |" in text
    assert "| all | 3 | 1 | b | 1.0000 [1.0000, 1.0000] | 2.00 [2.00, 2.00] | 0.000 [0.000, 0.000] | 1 |" in text
    assert "| all | 2 | 1 | a | 0.7500 [0.7500, 0.7500] | 2.00 [2.00, 2.00] |" in text  # hypervolume regret at 2
    assert "| all | 3 | 1 | a | 0.0000 [0.0000, 0.0000] | 1.00 [1.00, 1.00] |" in text
    # paired differences from b: a's regret minus b's, per kind
    assert "| all | 3 | 1 | a | -0.8000 [-0.8000, -0.8000] | 1 / 0 |" in text
    assert "| all | 3 | 1 | a | -0.2500 [-0.2500, -0.2500] | 1 / 0 |" in text
    assert "| mo/fake | f1, f2 | (0, 0) | (1, 1) | (2, 2) | 1.000000 | made up |" in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows"] == [] and {r["without_feasible"] for r in summary["constrained"]["feasibility"]} == {0, 1}
    assert sorted(p.name for p in report.plots) == sorted(
        f"{k}_{w}_vs_evaluations.png" for k in ("constrained", "multi") for w in ("regret", "rank"))


def test_old_trials_table_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE trials (optimizer TEXT NOT NULL, problem TEXT NOT NULL, seed INTEGER NOT NULL,
            budget INTEGER NOT NULL, trial INTEGER NOT NULL, value REAL NOT NULL, best_so_far REAL NOT NULL,
            suggest_seconds REAL NOT NULL, error INTEGER NOT NULL, fallback INTEGER NOT NULL, error_text TEXT,
            params_json TEXT, PRIMARY KEY (optimizer, problem, seed, budget, trial));
        INSERT INTO trials VALUES ('tpe', 'bbob/f01_i1_d2', 0, 1, 0, 1.0, 1.0, 0.0, 0, 0, NULL, '{}');""")
    con.commit()
    con.close()
    db = ResultStore(path)
    row = next(db.rows("SELECT * FROM trials"))
    assert (row["values_json"], row["constraints_json"], row["feasible"]) == (None, None, None)
