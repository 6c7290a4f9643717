"""Bad inputs (issue 19): every case of ``benchmarks/bad_inputs.py`` in-process, and the tests its table names
where no other test covered the case.

Each case must end in a clear error or a documented fallback (see the script's docstring); the cases that are
DEFECTs today are listed in ``KNOWN_DEFECTS`` and expected to fail (strictly: a fix makes the test fail until
the case leaves the list).
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from safetensors.torch import load_file, save_file

import metabo
from conftest import make_tiny_model
from metabo.acquisition import CandidateSearchConfig
from metabo.cli import main
from metabo.meta import MetaDataError, load_corpus
from metabo.model import save_model
from metabo.normalise import DEFAULT_TRANSFORM
from metabo.outcomes import read_outcomes
from metabo.sampler import PRED_MEAN_ATTR

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bad_inputs", ROOT / "benchmarks" / "bad_inputs.py")
bad_inputs = importlib.util.module_from_spec(_spec)
sys.modules["bad_inputs"] = bad_inputs  # its dataclasses look their module up
_spec.loader.exec_module(bad_inputs)

# Cases that are DEFECTs today (reported, in files this test does not own): id -> where the fix belongs.
KNOWN_DEFECTS: dict[str, str] = {}  # case id -> where its fix belongs; each is a strict expected failure

FAST = CandidateSearchConfig(n_candidates=128, refine_steps=3)


def _sampler(model, **kw) -> metabo.TNPSampler:
    kw.setdefault("n_startup_trials", 4)
    return metabo.TNPSampler(model=model, seed=0, search=FAST, **kw)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---------------------------------------------------------------------------------------------- the script's cases

def test_the_cases_cover_every_kind_of_bad_input():
    kinds = {c.kind for c in bad_inputs.CASES}
    assert kinds == {"weights", "cards", "related sources", "CSV/Parquet files", "CLI arguments", "search spaces",
                     "objective values"}
    assert len(bad_inputs.CASES) >= 24
    ids = [c.id for c in bad_inputs.CASES]
    assert len(ids) == len(set(ids))
    assert set(KNOWN_DEFECTS) <= set(ids)


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=KNOWN_DEFECTS[c.id], strict=True)]
                 if c.id in KNOWN_DEFECTS else []) for c in bad_inputs.CASES])
def test_no_bad_input_is_a_defect(case, tmp_path):
    result = bad_inputs.run_case(case, bad_inputs.Env(tmp_path, in_process=True))
    assert result.cls in (bad_inputs.CLEAR, bad_inputs.FALLBACK), f"{result.why}: {result.gets}"
    if result.cls == bad_inputs.FALLBACK:
        assert result.doc and result.doc in bad_inputs._readme_text()


def test_every_test_the_table_names_is_defined():
    for case in bad_inputs.CASES:
        path, _, node = case.test.partition("::")
        function = node.split("::")[-1].split("[")[0]
        assert (ROOT / path).is_file(), case.test
        assert re.search(rf"^def {re.escape(function)}\(", (ROOT / path).read_text(), re.M), case.test


def test_the_classification_catches_defects(tmp_path):
    """The classifier itself: a bare KeyError, an error raised outside metabo, a vague message, an accepted input
    and a multi-line or traceback-carrying command line are DEFECTs."""
    def bare():
        return {}["x"]

    def numpy_error():
        return np.zeros(2).reshape(3)

    assert bad_inputs.expect_error(bare, "x").cls == bad_inputs.DEFECT
    assert bad_inputs.expect_error(numpy_error, ".").cls == bad_inputs.DEFECT
    assert bad_inputs.expect_error(lambda: load_corpus(str(tmp_path / "a.csv")), "unrelated words").cls == \
        bad_inputs.DEFECT
    assert bad_inputs.expect_error(lambda: 1, ".").cls == bad_inputs.DEFECT
    assert bad_inputs.expect_error(lambda: load_corpus(str(tmp_path / "a.csv")), "a.csv").cls == bad_inputs.CLEAR

    class FakeEnv:
        def __init__(self, status, err):
            self.status, self.err = status, err

        def cli(self, argv):
            return self.status, self.err

    assert bad_inputs.expect_cli_error(FakeEnv(0, ""), [], ".").cls == bad_inputs.DEFECT
    assert bad_inputs.expect_cli_error(FakeEnv(1, "Traceback (most recent call last):\n  x\n"), [], ".").cls == \
        bad_inputs.DEFECT
    assert bad_inputs.expect_cli_error(FakeEnv(2, "one\ntwo\n"), [], ".").cls == bad_inputs.DEFECT
    assert bad_inputs.expect_cli_error(FakeEnv(2, "metabo x: bad\n"), [], "bad").cls == bad_inputs.CLEAR
    assert bad_inputs.documented("seen", "a sentence README.md does not hold").cls == bad_inputs.DEFECT


# ---------------------------------------------------------------------------------------------- related sources, tables

def test_a_related_table_with_text_in_a_numeric_column_fails_at_the_first_model_suggestion(multitask_model,
                                                                                        tmp_path):
    """Parameter columns are parsed once the search space is known: the constructor cannot see this one."""
    path = tmp_path / "sweep.csv"
    path.write_text("x,value\n0.1,1.0\noops,2.0\n0.3,0.5\n")
    study = optuna.create_study(sampler=_sampler(multitask_model, related=str(path), n_startup_trials=1))
    with pytest.raises(MetaDataError, match=r"sweep\.csv, row 2 \(line 3\), column 'x': non-numeric value 'oops'"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]


def test_a_corrupt_parquet_file_is_a_clear_error(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "sweep.parquet"
    path.write_bytes(b"PAR1 this is not really a parquet file")
    with pytest.raises(MetaDataError, match=r"sweep\.parquet: not a readable Parquet file"):
        load_corpus(str(path))


def test_parquet_without_a_value_column_or_with_boolean_values(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "sweep.parquet"
    pq.write_table(pa.table({"x": [0.1, 0.2], "loss": [1.0, 2.0]}), path)
    with pytest.raises(MetaDataError, match=r"no value column 'value' \(columns: x, loss\)"):
        load_corpus(str(path))
    pq.write_table(pa.table({"x": [0.1, 0.2], "value": [True, False]}), path)
    with pytest.raises(MetaDataError, match=r"row 1, column 'value': non-numeric value True"):
        load_corpus(str(path))


# ---------------------------------------------------------------------------------------------- command line

def test_cli_seeds_that_are_not_an_integer(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--seeds", "five", "--store", str(tmp_path / "r.db")])
    assert exc.value.code == 2
    assert "argument --seeds: not an integer: 'five'" in _one_error_line(capsys)
    assert not (tmp_path / "r.db").exists()


def test_cli_bench_unknown_yahpo_scenario(tmp_path, capsys):
    assert main(["bench", "--problems", "yahpo/nosuch/1", "--store", str(tmp_path / "r.db"), "--no-progress"]) == 2
    assert _one_error_line(capsys).startswith("metabo bench: unknown YAHPO scenario 'nosuch'")


def test_cli_card_refuses_non_finite_weights(tmp_path, capsys):
    path = save_model(make_tiny_model(1), tmp_path / "nan.safetensors")
    state = {k: v.clone() for k, v in load_file(str(path)).items()}
    key = next(k for k, v in state.items() if k.endswith("weight") and v.ndim == 2)
    state[key][0, 0] = float("nan")
    save_file(state, str(path), metadata=_metadata(path))
    before = path.with_suffix(".json").read_text()
    assert main(["card", str(path)]) == 2
    assert re.match(r"metabo card: .*nan\.safetensors: tensor .* non-finite", _one_error_line(capsys))
    assert path.with_suffix(".json").read_text() == before  # nothing vouched for


def _metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


def test_cli_finetune_on_a_bad_table(tmp_path, capsys):
    path = tmp_path / "sweep.csv"
    path.write_text("x,value\n0.1,1.0\n0.2,n/a\n")
    assert main(["finetune", "--file", str(path), "--out", str(tmp_path / "m.safetensors"), "--no-progress"]) == 2
    assert re.match(r"metabo finetune: .*sweep\.csv, row 2 \(line 3\), column 'value': non-numeric value 'n/a'",
                    _one_error_line(capsys))
    assert not (tmp_path / "m.safetensors").exists()


# ---------------------------------------------------------------------------------------------- search spaces

def _run(sampler, objective, n_trials):
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=n_trials)
    return study, [str(w.message) for w in record]


def test_a_study_without_parameters_runs(tiny_model):
    study, messages = _run(_sampler(tiny_model), lambda t: 1.0, 6)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 6
    assert all(t.params == {} for t in study.trials) and messages == []
    study, messages = _run(_sampler(tiny_model, search_space={}), lambda t: 1.0, 6)  # declared empty: the same
    assert len(study.trials) == 6 and messages == []


def test_single_valued_parameters_keep_their_value(tiny_model):
    def objective(trial):
        width = trial.suggest_float("width", 2.0, 2.0)
        kind = trial.suggest_categorical("kind", ["only"])
        n = trial.suggest_int("n", 3, 3)
        return (trial.suggest_float("x", 0, 1) - 0.3) ** 2 + width + len(kind) + n

    study, messages = _run(_sampler(tiny_model), objective, 7)
    assert messages == []  # no "outside the space the model handles" warning for them
    assert all(t.params["width"] == 2.0 and t.params["kind"] == "only" and t.params["n"] == 3 for t in study.trials)
    assert [PRED_MEAN_ATTR in t.user_attrs for t in study.trials] == [False] * 4 + [True] * 3  # x is modelled


def test_a_declared_search_space_of_non_distributions(tiny_model):
    """A clear error naming the parameter, at construction."""
    with pytest.raises((TypeError, ValueError), match="'x'"):
        sampler = _sampler(tiny_model, search_space={"x": "uniform(0, 1)"})
        optuna.create_study(sampler=sampler).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)


def test_a_declared_search_space_of_another_kind_is_left_out_with_a_warning(tiny_model):
    sampler = _sampler(tiny_model, search_space={"x": CategoricalDistribution(("a", "b"))})
    study = optuna.create_study(sampler=sampler)
    with pytest.warns(UserWarning, match="'x'.*left out of the model's data"):
        study.optimize(lambda t: float(t.suggest_int("x", 0, 10)), n_trials=6)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_declared_search_space_narrower_than_the_objective(tiny_model):
    """An error or a warning naming the parameter; the start-up trials at x > 1 are never read at x = 1."""
    sampler = _sampler(tiny_model, search_space={"x": FloatDistribution(0, 1)})
    try:
        study, messages = _run(sampler, lambda t: (t.suggest_float("x", 0, 10) - 6) ** 2, 6)
    except ValueError as exc:
        assert "'x'" in str(exc)
        return
    assert any("'x'" in m for m in messages) or not any(t.params["x"] > 1 for t in study.trials)


# ---------------------------------------------------------------------------------------------- objective values

def test_a_huge_penalty_value_keeps_the_good_values_apart():
    """A value of 1e300 for failed configurations reads as the worst (like inf), the good values stay apart."""
    values = np.array([0.01, 1e300, 0.04, 1e300, 0.09, 1e300, 0.16, 0.25])
    trials = [optuna.trial.create_trial(value=float(v), params={}, distributions={}) for v in values]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = read_outcomes(trials, [optuna.study.StudyDirection.MINIMIZE], DEFAULT_TRANSFORM).y[:, 0]
    good, bad = values < 1, values >= 1
    assert np.isfinite(y).all()
    assert np.all(np.diff(y[good]) < 0)  # minimised: smaller is better, so larger on the model's scale
    assert y[bad].max() <= y[good].min()


def test_a_text_constraint_is_refused_by_optuna(tiny_model):
    study = optuna.create_study(sampler=_sampler(tiny_model))
    trial = study.ask()
    with pytest.raises(TypeError, match="supposed to be a float"):
        trial.set_constraint("c", "high")
    assert math.isfinite(study.tell(trial, 1.0).value)
