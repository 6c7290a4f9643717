"""metabo.meta corpus: Optuna storages, CSV/Parquet tables, YAHPO train sampling, alignment and errors."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from metabo.meta import (
    AlignmentError,
    MetaDataError,
    PastStudy,
    align,
    align_corpus,
    from_storage,
    load_corpus,
    normalise_values,
    read_table,
    space_signature,
    yahpo_studies,
)

pytestmark = pytest.mark.filterwarnings("ignore:metabo.meta. skipping multi-objective")

SPACE = {
    "x": FloatDistribution(0.0, 1.0),
    "n": IntDistribution(1, 8),
    "opt": CategoricalDistribution(("adam", "sgd")),
}


def _fill(study: optuna.Study, params: list[dict], values: list[float]) -> None:
    for p, v in zip(params, values):
        study.add_trial(optuna.trial.create_trial(params=p, distributions={k: SPACE[k] for k in p}, value=v))


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'past.db'}"
    a = optuna.create_study(study_name="mlp-a", storage=url)
    _fill(a, [{"x": 0.1, "n": 2, "opt": "adam"}, {"x": 0.9, "n": 7, "opt": "sgd"}], [3.0, 1.0])
    a.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    a.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions={"x": SPACE["x"]},
                                          state=TrialState.PRUNED))
    trial = a.ask({"x": SPACE["x"]})
    a.tell(trial, math.inf)  # infinite value: complete but not finite, so left out
    b = optuna.create_study(study_name="mlp-b", storage=url, direction="maximize")
    _fill(b, [{"x": 0.3, "n": 4}, {"x": 0.4, "n": 5}, {"x": 0.6, "n": 1}], [0.5, 0.7, 0.2])
    other = optuna.create_study(study_name="other", storage=url)
    other.add_trial(optuna.trial.create_trial(params={"z": 1.0}, distributions={"z": FloatDistribution(0, 2)},
                                              value=0.0))
    optuna.create_study(study_name="mlp-mo", storage=url, directions=["minimize", "minimize"])
    return url


# --- Optuna storages -------------------------------------------------------------------------------------------

def test_storage_by_pattern_keeps_only_complete_finite_trials(storage_url):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        studies = from_storage(storage_url, "mlp-*")
    assert [s.name for s in studies] == ["mlp-a", "mlp-b"]
    assert any("multi-objective" in str(w.message) for w in record)
    a, b = studies
    assert len(a) == 2 and a.values.tolist() == [3.0, 1.0] and a.direction == "minimize"
    assert a.source == storage_url and a.search_space == SPACE
    assert b.direction == "maximize" and b.best(1)[0] == ({"x": 0.4, "n": 5}, 0.7)
    assert a.best(1)[0][0] == {"x": 0.9, "n": 7, "opt": "sgd"}


def test_storage_by_signature_full_and_partial(storage_url):
    full = from_storage(storage_url, target_space=SPACE, match="full")
    assert [s.name for s in full] == ["mlp-a"]
    partial = from_storage(storage_url, target_space={"x": FloatDistribution(0, 5)}, match="partial")
    assert [s.name for s in partial] == ["mlp-a", "mlp-b"]
    # kinds must match too: an int "x" matches nothing
    with pytest.raises(MetaDataError, match="partially matches"):
        from_storage(storage_url, target_space={"x": IntDistribution(0, 5)}, match="partial")
    assert space_signature(SPACE) == {"n": "int", "opt": "categorical", "x": "float"}


def test_load_corpus_mixes_sources(storage_url, tmp_path):
    study = optuna.create_study(study_name="live")
    _fill(study, [{"x": 0.2}], [1.0])
    csv = tmp_path / "t.csv"
    csv.write_text("x,value\n0.5,2\n")
    corpus = load_corpus([study, (storage_url, "mlp-b"), str(csv),
                          PastStudy("mine", "memory", {"x": SPACE["x"]}, [({"x": 0.1}, 0.0)])])
    assert [s.name for s in corpus] == ["live", "mlp-b", "t", "mine"]
    assert corpus[0].source == "optuna:live"
    assert [s.name for s in load_corpus((study, (storage_url, "mlp-a")))] == ["live", "mlp-a"]  # a tuple of sources
    assert [s.name for s in load_corpus((storage_url, "mlp-a"))] == ["mlp-a"]  # one (url, pattern) pair


def test_storage_errors(storage_url, tmp_path):
    with pytest.raises(MetaDataError, match="no such SQLite file"):
        from_storage(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(MetaDataError, match="cannot open Optuna storage 'nosuchdb://x'"):
        from_storage("nosuchdb://x")
    with pytest.raises(MetaDataError, match=r"no study matches the pattern 'cnn-\*'.*'mlp-a'"):
        from_storage(storage_url, "cnn-*")
    with pytest.raises(MetaDataError, match="multi-objective"):
        load_corpus(optuna.create_study(directions=["minimize", "maximize"]))


# --- tables ----------------------------------------------------------------------------------------------------

def test_csv_infers_space_and_reads_direction(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text("lr,layers,act,acc,direction\n0.01,2,relu,0.8,maximize\n0.1,4,tanh,0.9,maximize\n"
                    "\n0.05,3,relu,,maximize\n")
    with pytest.warns(UserWarning, match="skipped 1 row"):
        study = read_table(path, value_column="acc")
    assert study.direction == "maximize" and study.name == "sweep" and len(study) == 2
    assert study.search_space == {"lr": FloatDistribution(0.01, 0.1), "layers": IntDistribution(2, 4),
                                  "act": CategoricalDistribution(("relu", "tanh"))}
    assert study.observations[1] == ({"lr": 0.1, "layers": 4, "act": "tanh"}, 0.9)
    with pytest.raises(MetaDataError, match="says 'maximize' but direction='minimize'"):
        read_table(path, value_column="acc", direction="minimize")


def test_csv_with_target_space_and_optuna_export(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("number,value,params_x,params_n,params_opt,state\n0,1.5,0.2,3,adam,COMPLETE\n"
                    "1,,0.3,3,sgd,FAIL\n2,0.5,1.5,8,sgd,COMPLETE\n")
    study = read_table(path, target_space=SPACE)
    assert len(study) == 2 and set(study.search_space) == {"x", "n", "opt"}
    # declared kinds, widened to what was seen (alignment decides what fits the target)
    assert study.search_space["x"] == FloatDistribution(0.0, 1.5)
    assert study.search_space["n"] == IntDistribution(1, 8)
    assert study.observations[0][0] == {"x": 0.2, "n": 3, "opt": "adam"}
    assert isinstance(study.observations[0][0]["n"], int)


@pytest.mark.parametrize("text, kwargs, pattern", [
    ("", {}, r"empty\.csv: the file is empty"),
    ("x,y\n1,2\n", {}, r"empty\.csv: no value column 'value' \(columns: x, y\)"),
    ("x,value\n", {}, "header but no data rows"),
    ("x,value\n0.1,1\n0.2,abc\n", {}, r"row 2 \(line 3\), column 'value': non-numeric value 'abc'"),
    ("x,value\n0.1,1\noops,2\n", {"target_space": SPACE},
     r"empty\.csv, row 2 \(line 3\), column 'x': non-numeric value 'oops' in a numeric column"),
    ("x,value\n0.1,1\n,2\n", {}, r"row 2 \(line 3\), column 'x': empty or NaN parameter value"),
    ("x,value\nnan,1\n", {}, r"row 1 \(line 2\), column 'x': (empty or NaN|non-finite)"),
    ("x,value\n0.1,1\nabc,2\n", {}, r"row 2 \(line 3\), column 'x': non-numeric value 'abc' in a column that "
                                    r"also holds numbers \(row 1"),
    ("n,value\n2.5,1\n", {"target_space": SPACE}, r"column 'n': non-integer value '2.5'"),
    ("x,value\n0.1,1,3\n", {}, r"row 1 \(line 2\): 3 fields where the header has 2"),
])
def test_table_errors_name_file_row_and_column(tmp_path, text, kwargs, pattern):
    path = tmp_path / "empty.csv"
    path.write_text(text)
    with pytest.raises(MetaDataError, match=pattern):
        read_table(path, **kwargs)


def test_table_missing_params_can_be_omitted_and_other_file_errors(tmp_path):
    path = tmp_path / "cond.csv"
    path.write_text("x,n,value\n0.1,,1\n0.2,3,2\n")
    study = read_table(path, missing_params="omit")
    assert study.observations[0][0] == {"x": 0.1} and study.search_space["n"] == IntDistribution(3, 3)
    with pytest.raises(FileNotFoundError, match="no such corpus file"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MetaDataError, match="unknown corpus source"):
        load_corpus(str(tmp_path / "notes.txt"))


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "runs.parquet"
    pq.write_table(pa.table({"x": [0.1, 0.7], "n": [2, 5], "opt": ["adam", "sgd"], "loss": [0.3, 0.1]}), path)
    study = load_corpus(path, value_column="loss")[0]
    assert study.search_space == {"x": FloatDistribution(0.1, 0.7), "n": IntDistribution(2, 5),
                                  "opt": CategoricalDistribution(("adam", "sgd"))}
    assert study.best(1)[0] == ({"x": 0.7, "n": 5, "opt": "sgd"}, 0.1)
    pq.write_table(pa.table({"x": [0.1, None], "value": [1.0, 2.0]}), path)
    with pytest.raises(MetaDataError, match=r"runs\.parquet, row 2, column 'x': empty or NaN"):
        read_table(path)


# --- alignment and normalisation -------------------------------------------------------------------------------

def _past(direction: str = "minimize") -> PastStudy:
    space = {"x": FloatDistribution(-1.0, 2.0), "opt": CategoricalDistribution(("adam", "sgd", "rmsprop")),
             "extra": FloatDistribution(0, 1)}
    rows = [({"x": 0.5, "opt": "adam", "extra": 0.1}, 1.0), ({"x": 1.5, "opt": "sgd", "extra": 0.2}, 2.0),
            ({"x": 0.25, "opt": "rmsprop", "extra": 0.3}, 3.0), ({"x": -0.5, "opt": "sgd", "extra": 0.4}, 4.0),
            ({"opt": "sgd"}, 5.0)]
    return PastStudy("past", "memory", space, rows, direction)


def test_align_drop_clip_mask_and_categorical_mismatch():
    target = {"x": FloatDistribution(0.0, 1.0), "opt": CategoricalDistribution(("adam", "sgd")),
              "n": IntDistribution(1, 4)}
    a = align(_past(), target)
    assert a.param_names == ["n", "opt", "x"]
    assert a.rows.tolist() == [0, 4]  # 1: x too large, 2: rmsprop unknown, 3: x too small
    assert a.dropped == {"out of range: x": 2, "unknown choice: opt": 1}
    assert a.shared == ["opt", "x"] and a.missing == ["n"] and a.ignored == ["extra"]
    assert a.overlap == pytest.approx(2 / 3)
    assert a.observed.tolist() == [[False, True, True], [False, True, False]]
    assert a.x.shape == (2, 4) and np.all((a.x >= 0) & (a.x <= 1))
    assert a.params(0) == {"opt": "adam", "x": 0.5} and a.params(1) == {"opt": "sgd"}
    assert a.coord_mask().tolist()[1] == [False, True, True, False]
    # columns: n (the study lacks it: neutral filler), opt (2 one-hot), x (row 1 leaves it out: inactive, 0)
    assert a.x[:, 0].tolist() == [0.5, 0.5] and a.x[1, 3] == 0.0

    c = align(_past(), target, out_of_range="clip")
    assert c.rows.tolist() == [0, 1, 3, 4] and c.clipped == 2
    assert [c.params(i).get("x") for i in range(4)] == [0.5, 1.0, 0.0, None]


def test_align_rejects_zero_overlap_and_empty_results():
    with pytest.raises(AlignmentError, match=r"shares no parameter with the target space.*\['lr'\]"):
        align(_past(), {"lr": FloatDistribution(1e-4, 1.0, log=True)})
    with pytest.raises(AlignmentError, match="differ in kind"):
        align(_past(), {"x": CategoricalDistribution(("a", "b"))})
    with pytest.raises(AlignmentError, match=r"all 5 rows fall outside.*no shared parameter \(1 rows\), "
                                             r"out of range: x \(4 rows\)"):
        align(_past(), {"x": FloatDistribution(5.0, 6.0)})
    aligned, rejected = align_corpus([_past(), PastStudy("z", "m", {"z": FloatDistribution(0, 1)},
                                                         [({"z": 0.5}, 1.0)])], {"x": FloatDistribution(0, 1)})
    assert [a.name for a in aligned] == ["past"] and [r.name for r in rejected] == ["z"]
    with pytest.warns(UserWarning, match="leaving out study 'z'"):
        kept = load_corpus([_past(), rejected_study := PastStudy("z", "m", {"z": FloatDistribution(0, 1)},
                                                                 [({"z": 0.5}, 1.0)])],
                           target_space={"x": FloatDistribution(0, 1)})
    assert [s.name for s in kept] == ["past"]
    with pytest.raises(AlignmentError):
        load_corpus(rejected_study, target_space={"x": FloatDistribution(0, 1)}, on_reject="raise")


def test_direction_makes_larger_better():
    values = np.array([1.0, 3.0, 2.0])
    y_min, t = normalise_values(values, "minimize")
    y_max, _ = normalise_values(values, "maximize")
    assert np.argmax(y_min) == 0 and np.argmax(y_max) == 1
    assert np.allclose(t.inverse(y_min), values)
    target = {"x": FloatDistribution(-1, 2)}
    assert align(_past("minimize"), target).best_rows(1).tolist() == [0]
    best = align(_past("maximize"), target)  # row 4 holds no x: dropped
    assert best.values[best.best_rows(1)].tolist() == [4.0] and best.dropped == {"no shared parameter": 1}
    assert _past("maximize").best(1)[0][1] == 5.0
    with pytest.raises(MetaDataError, match="direction must be"):
        PastStudy("s", "m", {}, [], "up")


# --- YAHPO ------------------------------------------------------------------------------------------------------

def _yahpo_ready() -> str | None:
    from metabo.bench.problems import yahpo

    return yahpo.unavailable_reason("rbv2_rpart")


needs_yahpo = pytest.mark.skipif(_yahpo_ready() is not None, reason=str(_yahpo_ready()))


@needs_yahpo
def test_yahpo_samples_train_instances_only():
    from metabo.bench.problems import yahpo

    train = yahpo.instances("rbv2_rpart", ("train",))
    studies = load_corpus("yahpo:rbv2_rpart", yahpo_n_configs=8, seed=1)
    assert [s.name for s in studies] == [f"yahpo/rbv2_rpart/{i}" for i in train]
    assert all(len(s) == 8 and s.source == "yahpo:rbv2_rpart" and s.direction == "minimize" for s in studies)
    s0 = studies[0]
    assert s0.search_space == yahpo.YahpoProblem("rbv2_rpart", train[0]).search_space()
    assert np.all(np.isfinite(s0.values))
    again = yahpo_studies("rbv2_rpart", 8, instances=[train[0]], seed=1)[0]
    assert again.observations == s0.observations  # reproducible per (seed, instance)
    assert studies[1].params != s0.params  # instances do not share configurations


@needs_yahpo
def test_yahpo_refuses_reserved_and_unasked_validation():
    from metabo.bench.problems import yahpo

    reserved = yahpo.instances("lcbench", ("reserved",))[0]
    validation = yahpo.instances("lcbench", ("validation",))[0]
    with pytest.raises(PermissionError, match="reserved"):
        yahpo_studies("lcbench", 2, instances=[reserved])
    with pytest.raises(PermissionError, match="reserved"):
        yahpo_studies("lcbench", 2, splits=("train", "reserved"), instances=[reserved])
    with pytest.raises(PermissionError, match="reserved"):
        load_corpus("yahpo:lcbench", yahpo_splits=("reserved",), yahpo_n_configs=2)
    with pytest.raises(PermissionError, match="'validation' instance"):
        yahpo_studies("lcbench", 2, instances=[validation])
    assert yahpo_studies("lcbench", 2, splits=("validation",), instances=[validation])[0].name.endswith(validation)
    with pytest.raises(KeyError, match="unknown YAHPO scenario"):
        yahpo_studies("nope", 2)
