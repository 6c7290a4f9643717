"""The benchmark runner never records random search under an optimiser's name: a run whose optimiser cannot be
built fails and is not stored, a missing model stops the benchmark before it starts, and a run in which the
optimiser raised is stored but not complete (rerun next time)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from optuna.samplers import RandomSampler

pytest.importorskip("ioh")

from metabo.bench import optimizers  # noqa: E402
from metabo.bench.optimizers import OptimizerSpec  # noqa: E402
from metabo.bench.problems import select_problems  # noqa: E402
from metabo.bench.runner import run_benchmark  # noqa: E402
from metabo.bench.store import ResultStore  # noqa: E402
from metabo.cli import main  # noqa: E402
from metabo.model import ModelLoadError  # noqa: E402

PROBLEM = "bbob/f01_i1_d2"


class FlakySampler(RandomSampler):
    """Raises on every other point it is asked for (the runner then asks its random fallback)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.calls = 0

    def sample_independent(self, study, trial, param_name, param_distribution):
        self.calls += 1
        if self.calls % 4 == 1:  # two parameters per point: points 0, 2, 4, ... fail
            raise RuntimeError("flaky optimiser")
        return super().sample_independent(study, trial, param_name, param_distribution)


def _unbuildable(run: optimizers.Run) -> RandomSampler:
    raise ValueError("this optimiser cannot be built")


@pytest.fixture
def extra_optimizers(monkeypatch):
    monkeypatch.setitem(optimizers.REGISTRY, "flaky", OptimizerSpec("flaky", lambda run: FlakySampler(run.seed)))
    monkeypatch.setitem(optimizers.REGISTRY, "unbuildable", OptimizerSpec("unbuildable", _unbuildable))


def _runs(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as con:
        return con.execute("SELECT optimizer, n_errors, n_fallbacks FROM runs").fetchall()


def test_missing_model_stops_the_benchmark_before_anything_is_written(tmp_path):
    store = tmp_path / "r.db"
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(ModelLoadError, match=f"optimiser 'metabo:{missing}'.*no such model file"):
        run_benchmark([f"metabo:{missing}"], select_problems([PROBLEM]), range(1), 2, store, progress=False)
    assert not store.exists()


def test_cli_missing_model_is_one_line_and_a_rerun_refuses_again(tmp_path, capsys):
    store = tmp_path / "r.db"
    args = ["bench", "--optimizers", f"metabo:{tmp_path / 'missing.safetensors'}", "--problems", PROBLEM,
            "--seeds", "1", "--budget", "2", "--store", str(store), "--no-progress"]
    for _ in range(2):
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no such model file" in err[0] and err[0].startswith("metabo bench: ")
    assert not store.exists()


def test_unbuildable_optimizer_fails_its_runs_and_stores_nothing(tmp_path, extra_optimizers, capsys):
    store = tmp_path / "r.db"
    problems = select_problems([PROBLEM])
    for _ in range(2):  # not stored, so tried again (and failing again) on the next call
        counts = run_benchmark(["unbuildable", "random"], problems, range(1), 3, store, progress=False)
        assert counts["failed"] == 1 and counts["with_errors"] == 0
        assert "unbuildable on bbob/f01_i1_d2 seed 0 failed and was not stored" in capsys.readouterr().out
    assert [r[0] for r in _runs(store)] == ["random"]


def test_run_with_optimizer_errors_is_stored_but_not_complete(tmp_path, extra_optimizers):
    store = tmp_path / "r.db"
    problems = select_problems([PROBLEM])
    counts = run_benchmark(["flaky"], problems, range(1), 4, store, progress=False)
    assert counts["with_errors"] == 1 and counts["done"] == 0
    assert _runs(store) == [("flaky", 2, 2)]
    db = ResultStore(store)
    assert not db.complete_keys() and len(db.complete_keys(with_errors=True)) == 1
    again = run_benchmark(["flaky"], problems, range(1), 4, store, progress=False)
    assert again["skipped"] == 0 and again["with_errors"] == 1  # rerun by default
    kept = run_benchmark(["flaky"], problems, range(1), 4, store, progress=False, retry_errors=False)
    assert kept["skipped"] == 1


def test_cli_exit_status_says_when_runs_had_errors(tmp_path, extra_optimizers, capsys):
    common = ["bench", "--problems", PROBLEM, "--seeds", "1", "--budget", "4", "--no-progress"]
    assert main(common + ["--optimizers", "flaky", "--store", str(tmp_path / "a.db")]) == 1
    assert "1 with optimiser errors" in capsys.readouterr().out
    assert main(common + ["--optimizers", "flaky", "--store", str(tmp_path / "a.db"), "--keep-errors"]) == 0
    assert "1 already complete" in capsys.readouterr().out
    assert main(common + ["--optimizers", "random", "--store", str(tmp_path / "b.db")]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--optimizers", "nosuch"], "unknown optimiser 'nosuch'"),
    (["--problems", "nosuch"], "unknown problem name 'nosuch'"),
    (["--seeds", "0"], "argument --seeds: must be at least 1"),
    (["--budget", "x"], "argument --budget: not an integer"),
    (["--workers", "-1"], "argument --workers: must be at least 1"),
])
def test_cli_bad_bench_options_are_one_line(tmp_path, capsys, argv, message):
    try:
        status = main(["bench", "--store", str(tmp_path / "r.db"), "--no-progress"] + argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("content", [None, b"not a database at all, just some bytes" * 10])
def test_cli_report_on_a_missing_or_foreign_store_is_one_line(tmp_path, capsys, content):
    store = tmp_path / "r.db"
    if content is not None:
        store.write_bytes(content)
    assert main(["report", "--store", str(store), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("metabo report: "), err
    assert ("no such results store" if content is None else "not a usable results store") in err[0]
    assert store.exists() == (content is not None)  # a report never creates a store


def test_reading_a_missing_store_raises_and_creates_nothing(tmp_path):
    from metabo.bench.report import load_curves

    missing = tmp_path / "typo" / "results.db"
    with pytest.raises(FileNotFoundError, match="no such results store"):
        load_curves(missing)
    assert not missing.exists() and not missing.parent.exists()
