"""Problem registry, YAHPO splits and evaluation, reference values and store migration (fast unit tests)."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from metabo.bench import problems as registry
from metabo.bench.problems import family_available, get_problem, normalised_regret, select_problems
from metabo.bench.reference import ensure_problem_constants, random_sample, reference_search, sample_configs
from metabo.bench.store import ResultStore, RunKey, RunResult, TrialRecord

FIXTURE = Path(__file__).parent / "data" / "yahpo_reference.json"


def _yahpo_ready() -> str | None:
    from metabo.bench.problems import yahpo

    return yahpo.unavailable_reason("lcbench")


needs_yahpo = pytest.mark.skipif(_yahpo_ready() is not None, reason=str(_yahpo_ready()))


# --- registry and names ------------------------------------------------------------------------------------------

def test_import_is_cheap():
    code = ("import sys, metabo.bench.problems as p; p.family_names(); "
            "print(sorted(m for m in ('ioh', 'onnxruntime', 'sklearn', 'highspy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_builtin_families_are_registered():
    assert registry.family_names()[:4] == ["bbob", "yahpo", "sklearn", "highs"]
    assert family_available("bbob")


def test_bbob_names_parse_and_select():
    p = get_problem("bbob/f07_i3_d5")
    assert (p.fid, p.instance, p.dim, p.family, p.name) == (7, 3, 5, "bbob", "bbob/f07_i3_d5")
    assert isinstance(p, registry.Problem)
    assert list(p.search_space()) == [f"x{i}" for i in range(5)]
    chosen = select_problems("bbob/f0[1-3]_i1_d2, bbob/f01_i2_d3")
    assert [q.name for q in chosen] == ["bbob/f01_i1_d2", "bbob/f02_i1_d2", "bbob/f03_i1_d2", "bbob/f01_i2_d3"]
    assert len(select_problems("bbob/*_d7")) == 24  # a mentioned dimension joins the glob's pool
    for bad in ("bbob/f1_i1_d2", "bbob/f25_i1_d2", "nope/x", "justaname"):
        with pytest.raises((KeyError, ValueError)):
            get_problem(bad)
    with pytest.raises(ValueError, match="no problem matches"):
        select_problems("bbob/f99*")


def test_register_family_lazy_module(tmp_path, monkeypatch):
    module = types.ModuleType("fake_family_mod")

    class Quad:
        family, dim, known_optimum, random_median_points = "fake", 1, None, 50

        def __init__(self, k: int) -> None:
            self.name = f"fake/q{k}"

        def search_space(self):
            return {"x": FloatDistribution(-1, 1)}

        def evaluate(self, params):
            return float(params["x"]) ** 2

    module.problems = lambda: [Quad(1), Quad(2)]
    monkeypatch.setitem(sys.modules, "fake_family_mod", module)
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    registry.register_family("fake", "fake_family_mod")
    registry.register_family("ghost", "no_such_module_for_metabo_tests")
    assert [p.name for p in select_problems("fake/*")] == ["fake/q1", "fake/q2"]
    assert get_problem("fake/q2").name == "fake/q2"
    assert not family_available("ghost")
    with pytest.raises(ImportError, match="ghost"):
        select_problems("ghost/anything")
    with pytest.raises(ImportError, match="unavailable"):
        select_problems("ghost/*")


def test_normalised_regret_clips_and_checks():
    assert normalised_regret(np.array([1.0, -1.0, 3.0]), 1.0, 3.0).tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        normalised_regret(1.0, 2.0, 2.0)


# --- YAHPO ---------------------------------------------------------------------------------------------------------

@needs_yahpo
def test_yahpo_default_selection_is_validation_only():
    from metabo.bench.problems import yahpo

    splits = json.loads((yahpo.data_dir() / "splits.json").read_text())["scenarios"]
    chosen = select_problems("yahpo/*")
    assert chosen and all(p.split == "validation" for p in chosen)
    for scenario in yahpo.SCENARIOS:
        names = {p.instance for p in chosen if p.scenario == scenario}
        assert names == set(splits[scenario].get("validation", []))
    reserved = {f"yahpo/{s}/{i}" for s, v in splits.items() for i in v.get("reserved", [])}
    assert not reserved & {p.name for p in select_problems("*")}


@needs_yahpo
def test_yahpo_reserved_and_train_need_explicit_options():
    from metabo.bench.problems import yahpo

    splits = json.loads((yahpo.data_dir() / "splits.json").read_text())["scenarios"]["lcbench"]
    reserved, train = f"yahpo/lcbench/{splits['reserved'][0]}", f"yahpo/lcbench/{splits['train'][0]}"
    with pytest.raises(PermissionError, match="allow-reserved"):
        get_problem(reserved)
    with pytest.raises(PermissionError, match="allow-reserved"):
        select_problems(reserved)
    with pytest.raises(ValueError, match="reserved"):
        select_problems("yahpo/lcbench/*", splits=["reserved"])
    assert get_problem(reserved, allow_reserved=True).split == "reserved"
    assert {p.split for p in select_problems("yahpo/lcbench/*", splits=["reserved"], allow_reserved=True)} == {
        "reserved"}
    with pytest.raises(PermissionError, match="train"):
        select_problems(train)
    assert [p.name for p in select_problems(train, splits=["train"])] == [train]
    assert {p.split for p in select_problems("yahpo/lcbench/*", splits=["train"])} == {"train"}
    with pytest.raises(KeyError):
        get_problem("yahpo/lcbench/999999")
    with pytest.raises(KeyError):
        get_problem("yahpo/nosuch/1")


@needs_yahpo
def test_yahpo_matches_yahpo_gym_outputs():
    """Single-configuration outputs equal yahpo-gym 1.0.2's (fixture from benchmarks/check_yahpo_equivalence.py)."""
    from metabo.bench.problems import yahpo

    fixture = json.loads(FIXTURE.read_text())["scenarios"]
    assert set(fixture) == set(yahpo.SCENARIOS)
    for scenario, sample in fixture.items():
        model = yahpo.surrogate(scenario, yahpo.data_dir())
        assert list(model.scenario.y_names) == sample["y_names"]
        ours = np.vstack([model.predict([c]) for c in sample["configs"]])
        np.testing.assert_allclose(ours, np.asarray(sample["single"]), rtol=1e-5, atol=1e-5, err_msg=scenario)


@needs_yahpo
def test_yahpo_problem_objective_and_conditionals():
    p = get_problem("yahpo/rbv2_xgboost/40966")
    space = p.search_space()
    assert p.dim == len(space) == 14 and "task_id" not in space and "trainsize" not in space
    params = {n: (d.choices[0] if isinstance(d, CategoricalDistribution) else d.low) for n, d in space.items()}
    params["booster"] = "gblinear"
    value = p.evaluate(params)
    assert math.isfinite(value) and value == p.evaluate(dict(params))  # deterministic
    assert p.evaluate({**params, "eta": 0.5, "rate_drop": 0.9}) == value  # inactive for gblinear
    tree = {**params, "booster": "gbtree"}
    assert p.evaluate({**tree, "eta": 0.5}) != p.evaluate({**tree, "eta": 0.001})
    assert p.evaluate({**tree, "rate_drop": 0.9}) == p.evaluate(tree)  # only active for dart
    lc = get_problem("yahpo/lcbench/7593")
    assert lc.dim == 7 and lc.known_optimum is None and lc.random_median_points == 10_000
    assert -100.0 <= lc.evaluate(sample_configs(lc.search_space(), 1, 0)[0]) <= 0.0  # -val_accuracy in percent


def test_yahpo_data_dir_env_override(tmp_path, monkeypatch):
    from metabo.bench.problems import yahpo

    monkeypatch.setenv(yahpo.DATA_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="missing"):
        yahpo.data_dir()
    assert not family_available("yahpo")
    with pytest.raises(ValueError, match="no problem matches"):
        select_problems("*/f01_i1_d2x")  # an unavailable family is skipped by globs


# --- reference values and the store ---------------------------------------------------------------------------------

class Bowl:
    """A cheap mixed problem with no declared optimum: (x - 0.3)^2 + [c != 'b']."""

    name, family, dim, known_optimum, random_median_points = "toy/bowl", "toy", 2, None, 400

    def __init__(self) -> None:
        self.calls = 0

    def search_space(self):
        return {"x": FloatDistribution(-1.0, 1.0), "c": CategoricalDistribution(("a", "b", "c"))}

    def evaluate(self, params):
        self.calls += 1
        return (float(params["x"]) - 0.3) ** 2 + float(params["c"] != "b")


def _run(problem: str, values: list[float], optimizer: str = "tpe", seed: int = 0) -> RunResult:
    best = np.minimum.accumulate(values)
    trials = [TrialRecord(i, v, float(b), 0.0, params={"x": 0.0, "c": "a"})
              for i, (v, b) in enumerate(zip(values, best))]
    return RunResult(RunKey(optimizer, problem, seed, len(values)), trials, None, 0.1, "2026-01-01T00:00:00+00:00")


def test_random_sample_is_seeded_and_cached(tmp_path):
    bowl = Bowl()
    a, b = random_sample(bowl), random_sample(bowl)
    assert a.median == b.median and a.best_params == b.best_params and a.points == 400
    db = ResultStore(tmp_path / "r.db")
    bowl.calls = 0
    ensure_problem_constants(db, [bowl])
    ensure_problem_constants(db, [bowl])
    assert bowl.calls == 400  # computed once per store
    row = db.problem_row("toy/bowl")
    assert row["exact"] == 0 and row["random_median"] == pytest.approx(a.median)
    assert row["f_opt"] == pytest.approx(a.best_value) and "random points" in row["f_opt_source"]


def test_reference_is_updated_by_runs_and_searches(tmp_path):
    bowl = Bowl()
    db = ResultStore(tmp_path / "r.db")
    ensure_problem_constants(db, [bowl])
    start = db.references()["toy/bowl"]["f_opt"]
    db.put_run(_run("toy/bowl", [start + 1.0, start - 1e-6]))
    ref = db.references()["toy/bowl"]
    assert ref["f_opt"] == pytest.approx(start - 1e-6) and "tpe run, seed 0" in ref["f_opt_source"]
    db.put_reference("toy/bowl", "test", 0, 10, start + 5.0, {}, 0.0, "now")  # worse: no change
    assert db.references()["toy/bowl"]["f_opt"] == pytest.approx(start - 1e-6)
    found = reference_search(bowl, 300, seed=0)
    assert found.best_value < 1e-4 and found.best_params["c"] == "b"
    db.put_reference("toy/bowl", found.method, 0, 300, found.best_value, found.best_params, found.seconds, "now")
    ref = db.references()["toy/bowl"]
    assert ref["f_opt"] == pytest.approx(found.best_value) and "reference search" in ref["f_opt_source"]
    assert (("toy/bowl", 0, 300)) in db.reference_keys()
    # a known optimum never moves
    db.put_problem("bbob/f01_i1_d2", 2, 79.48, 95.0, exact=True)
    db.put_run(_run("bbob/f01_i1_d2", [70.0], optimizer="random"))
    assert db.references()["bbob/f01_i1_d2"]["f_opt"] == 79.48


OLD_SCHEMA = """
CREATE TABLE problems (name TEXT PRIMARY KEY, dim INTEGER NOT NULL, f_opt REAL NOT NULL, random_median REAL NOT NULL);
CREATE TABLE runs (
    optimizer TEXT NOT NULL, problem TEXT NOT NULL, seed INTEGER NOT NULL, budget INTEGER NOT NULL,
    startup_trials INTEGER, n_errors INTEGER NOT NULL, n_fallbacks INTEGER NOT NULL, n_warnings INTEGER NOT NULL,
    first_error TEXT, warnings_json TEXT, wall_seconds REAL NOT NULL, finished_at TEXT NOT NULL, info_json TEXT,
    PRIMARY KEY (optimizer, problem, seed, budget));
CREATE TABLE trials (
    optimizer TEXT NOT NULL, problem TEXT NOT NULL, seed INTEGER NOT NULL, budget INTEGER NOT NULL,
    trial INTEGER NOT NULL, value REAL NOT NULL, best_so_far REAL NOT NULL, suggest_seconds REAL NOT NULL,
    error INTEGER NOT NULL, fallback INTEGER NOT NULL, error_text TEXT, params_json TEXT,
    PRIMARY KEY (optimizer, problem, seed, budget, trial));
"""


def test_old_store_is_migrated_without_changing_bbob_regrets(tmp_path):
    from metabo.bench.report import load_curves

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(OLD_SCHEMA)
    con.execute("INSERT INTO problems VALUES ('bbob/f01_i1_d2', 2, 79.48, 95.69)")
    con.execute("INSERT INTO runs VALUES ('tpe', 'bbob/f01_i1_d2', 0, 2, 10, 0, 0, 0, NULL, '{}', 1.0, 'x', '{}')")
    con.executemany("INSERT INTO trials VALUES ('tpe', 'bbob/f01_i1_d2', 0, 2, ?, ?, ?, 0.0, 0, 0, NULL, '{}')",
                    [(0, 90.0, 90.0), (1, 85.0, 85.0)])
    con.commit()
    con.close()
    db = ResultStore(path)
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(problems)")}
    assert {"family", "exact", "f_opt_source", "random_median_points", "random_median_source"} <= columns
    row = db.problem_row("bbob/f01_i1_d2")
    assert (row["family"], row["exact"], row["f_opt"], row["random_median"]) == ("bbob", 1, 79.48, 95.69)
    curves = load_curves(path)
    expected = (85.0 - 79.48) / (95.69 - 79.48)
    assert curves.regret("tpe", [("bbob/f01_i1_d2", 0)], 2)[0] == pytest.approx(expected)
    assert len(list(db.rows("SELECT * FROM trials"))) == 2
    ResultStore(path)  # opening again is a no-op
