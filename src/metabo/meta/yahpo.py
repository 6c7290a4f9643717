"""YAHPO Gym surrogates (``yahpo/<scenario>/<instance>``), evaluated with ``onnxruntime`` directly.

YAHPO Gym (Pfisterer et al., 2022) ships one ONNX surrogate per scenario, fitted on real HPO runs over OpenML
tasks. ``yahpo-gym`` itself pins ConfigSpace 0.6 (which conflicts with numpy 2), so this module reproduces its
input encoding instead of importing it: categorical inputs (instance first) become the integer codes of the
scenario's ``encoding.json``, numeric inputs their raw values as float32 in the scenario's fixed column order,
inactive conditional parameters 0 (numeric) or ``#na#`` (categorical), exactly as ``BenchmarkSet.objective_function``
does for a configuration that leaves them out. ``benchmarks/check_yahpo_equivalence.py`` proves the outputs equal
to yahpo-gym 1.0.2's on random configurations; ``tests/data/yahpo_reference.json`` holds a sample of them.

This is the library side of YAHPO: meta-learning (``metabo.meta.yahpo_source``, ``metabo.train.nap``) and the
CLI read the data through it; the benchmark harness's YAHPO family builds on it.

Objectives (minimised, at full fidelity, deterministic surrogates):

| scenario | fidelity fixed at | objective |
|---|---|---|
| lcbench | epoch = 52 | ``-val_accuracy`` (val_accuracy is in percent) |
| rbv2_xgboost, rbv2_rpart | trainsize = 1, repl = 10 | ``1 - acc`` |
| iaml_glmnet | trainsize = 1 | ``mmce`` (= 1 - accuracy) |

Search spaces are flat (Optuna has no conditionals in a fixed space): every hyperparameter of the scenario
except the instance and the fidelity parameters is a parameter; a parameter made inactive by a condition (e.g.
xgboost's ``eta`` when ``booster`` is ``gblinear``, or ``rate_drop`` unless it is ``dart``) is simply ignored.

Data: the folder holding ``<scenario>/model.onnx``, ``config_space.json``, ``encoding.json`` and ``splits.json``.
It is, in order: ``set_data_dir(path)`` (the CLI's ``--yahpo-data``), the ``METABO_YAHPO_DATA`` environment
variable, ``../shared/data/yahpo`` from the working directory, then from the repository root. The data files are
read in place, never copied.

``splits.json`` decides which instances may be used: selection lists ``validation`` instances by default,
``train`` instances only when asked for (meta-training), ``reserved`` instances only with ``allow_reserved``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

NAME_PREFIX = "yahpo"  # instances are named ``yahpo/<scenario>/<instance>``
DATA_ENV = "METABO_YAHPO_DATA"
SPLITS = ("train", "validation", "reserved")
DEFAULT_SPLITS = ("validation",)
_RELATIVE_DEFAULT = Path("..") / "shared" / "data" / "yahpo"
_REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Scenario:
    """How one YAHPO scenario is fed and read (column orders as in yahpo-gym 1.0.2's scenario configs)."""

    name: str
    instance_param: str
    cat_names: tuple[str, ...]  # categorical model inputs, in model order (instance first)
    cont_names: tuple[str, ...]  # numeric model inputs, in model order (fidelities included)
    y_names: tuple[str, ...]  # model outputs, in order
    fidelity: tuple[tuple[str, float], ...]  # fidelity parameter -> fixed (full) value
    target: str  # output the objective is read from
    sign: float  # objective = offset + sign * target
    offset: float = 0.0

    def objective(self, outputs: np.ndarray) -> np.ndarray:
        """Minimised objective from model outputs (rows = configurations)."""
        return self.offset + self.sign * outputs[:, self.y_names.index(self.target)].astype(np.float64)


_RBV2_Y = ("acc", "bac", "auc", "brier", "f1", "logloss", "timetrain", "timepredict", "memory")
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("lcbench", "OpenML_task_id", ("OpenML_task_id",),
             ("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units",
              "max_dropout"),
             ("time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "test_cross_entropy",
              "test_balanced_accuracy"),
             (("epoch", 52),), "val_accuracy", -1.0),
    Scenario("rbv2_xgboost", "task_id", ("task_id", "booster", "num.impute.selected.cpo"),
             ("nrounds", "eta", "gamma", "lambda", "alpha", "subsample", "max_depth", "min_child_weight",
              "colsample_bytree", "colsample_bylevel", "rate_drop", "skip_drop", "trainsize", "repl"),
             _RBV2_Y, (("trainsize", 1.0), ("repl", 10)), "acc", -1.0, 1.0),
    Scenario("rbv2_rpart", "task_id", ("task_id", "num.impute.selected.cpo"),
             ("cp", "maxdepth", "minbucket", "minsplit", "trainsize", "repl"),
             _RBV2_Y, (("trainsize", 1.0), ("repl", 10)), "acc", -1.0, 1.0),
    Scenario("iaml_glmnet", "task_id", ("task_id",), ("alpha", "s", "trainsize"),
             ("mmce", "f1", "auc", "logloss", "ramtrain", "rammodel", "rampredict", "timetrain", "timepredict",
              "mec", "ias", "nf"),
             (("trainsize", 1.0),), "mmce", 1.0),
)}


def check_scenario(scenario: str) -> Scenario:
    """The ``Scenario`` called ``scenario``; ``KeyError`` naming the supported ones otherwise."""
    if scenario not in SCENARIOS:
        raise KeyError(f"unknown YAHPO scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    return SCENARIOS[scenario]


# --- the data folder -------------------------------------------------------------------------------------------

_override: Path | None = None


def set_data_dir(path: str | Path | None) -> None:
    """Use ``path`` as the YAHPO data folder (``None``: back to the defaults). Also exported as
    ``METABO_YAHPO_DATA`` so that spawned benchmark workers see the same folder."""
    global _override
    _override = None if path is None else Path(path).expanduser().resolve()
    if _override is None:
        os.environ.pop(DATA_ENV, None)
    else:
        os.environ[DATA_ENV] = str(_override)


def candidate_data_dirs() -> list[Path]:
    """Where the data folder is looked for, in order (see the module docstring)."""
    return list(_candidates(_override, os.environ.get(DATA_ENV) or None, Path.cwd()))


@functools.lru_cache(maxsize=16)
def _candidates(override: Path | None, env: str | None, cwd: Path) -> tuple[Path, ...]:
    out = [override] if override is not None else []
    if env:
        out.append(Path(env).expanduser())
    out += [cwd / _RELATIVE_DEFAULT, _REPO_ROOT / _RELATIVE_DEFAULT]
    return tuple(p.resolve() for p in out)


def data_dir() -> Path:
    """The YAHPO data folder in use; ``FileNotFoundError`` (naming the places tried) when there is none."""
    explicit = _override is not None or bool(os.environ.get(DATA_ENV))
    return _find(_candidates(_override, os.environ.get(DATA_ENV) or None, Path.cwd()), explicit)


@functools.lru_cache(maxsize=16)
def _find(candidates: tuple[Path, ...], explicit: bool) -> Path:
    # cached: evaluate() asks for the folder on every call (a missing folder raises and is not cached)
    for i, path in enumerate(candidates):
        if (path / "splits.json").is_file():
            return path
        if i == 0 and explicit:  # an explicit folder must be right; never fall back silently
            break
    tried = candidates[:1] if explicit else candidates
    raise FileNotFoundError(f"no YAHPO data folder (with splits.json) at {', '.join(map(str, tried))}; "
                            f"set {DATA_ENV} or pass --yahpo-data")


def unavailable_reason(scenario: str = "lcbench") -> str | None:
    """Why ``scenario``'s surrogate cannot be evaluated here (no data folder, no onnxruntime, no model file),
    or None when it can."""
    try:
        folder = data_dir()
    except FileNotFoundError as exc:
        return f"YAHPO data folder absent ({exc})"
    try:
        import onnxruntime  # noqa: F401  (optional heavy dependency)
    except ImportError:
        return "onnxruntime is not installed (pip install onnxruntime, or the project's bench extra)"
    return None if (folder / scenario / "model.onnx").is_file() else f"no {scenario} surrogate in {folder}"


def available() -> bool:
    """Whether a data folder exists and ``onnxruntime`` is importable."""
    try:
        data_dir()
    except FileNotFoundError:
        return False
    return importlib.util.find_spec("onnxruntime") is not None


# --- splits ----------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _splits(folder: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    raw = json.loads((folder / "splits.json").read_text())["scenarios"]
    return {s: {k: tuple(str(i) for i in v.get(k, ())) for k in SPLITS} for s, v in raw.items()}


def split_of(scenario: str, instance: str) -> str:
    """``train``, ``validation`` or ``reserved`` for an instance (one missing from splits.json counts as reserved)."""
    for split, members in _splits(data_dir()).get(scenario, {}).items():
        if instance in members:
            return split
    return "reserved"


def instances(scenario: str, splits: Iterable[str] = DEFAULT_SPLITS) -> list[str]:
    """Instances of ``scenario`` in the given splits, in splits.json order."""
    table = _splits(data_dir()).get(scenario, {})
    return [i for s in SPLITS if s in set(splits) for i in table.get(s, ())]


def check_splits(splits: Iterable[str], allow_reserved: bool) -> tuple[str, ...]:
    """Validate a split selection; ``reserved`` needs ``allow_reserved``."""
    splits = tuple(dict.fromkeys(splits))
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown YAHPO split(s) {sorted(unknown)}; choose from {', '.join(SPLITS)}")
    if "reserved" in splits and not allow_reserved:
        raise ValueError("YAHPO 'reserved' instances are kept for independent evaluation; "
                         "select them only with allow_reserved=True (--allow-reserved)")
    return splits


def check_instance(scenario: str, instance: str, allow_reserved: bool = False) -> str:
    """The split of ``instance`` after checking it: ``KeyError`` for an unknown scenario or an instance the
    scenario does not have, ``PermissionError`` for a reserved instance without ``allow_reserved``."""
    check_scenario(scenario)
    name = f"{NAME_PREFIX}/{scenario}/{instance}"
    if instance not in known_instances(scenario):
        raise KeyError(f"{name!r}: {instance!r} is not an instance of {scenario}")
    split = split_of(scenario, instance)
    if split == "reserved" and not allow_reserved:
        raise PermissionError(f"{name} is a reserved YAHPO instance (splits.json): kept for independent "
                              "evaluation; pass allow_reserved=True (--allow-reserved) to use it")
    return split


# --- search spaces ---------------------------------------------------------------------------------------------

def _hyperparameters(folder: Path, scenario: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    raw = json.loads((folder / scenario / "config_space.json").read_text())
    return raw["hyperparameters"], raw.get("conditions", [])


def known_instances(scenario: str) -> tuple[str, ...]:
    """Every instance the scenario's surrogate knows (its ``config_space.json``), whatever its split."""
    hps, _ = _hyperparameters(data_dir(), scenario)
    return tuple(str(c) for c in next(hp["choices"] for hp in hps
                                      if hp["name"] == check_scenario(scenario).instance_param))


def _distribution(hp: dict[str, Any]) -> BaseDistribution:
    kind = hp["type"]
    if kind == "uniform_float":
        return FloatDistribution(float(hp["lower"]), float(hp["upper"]), log=bool(hp.get("log")))
    if kind == "uniform_int":
        return IntDistribution(int(hp["lower"]), int(hp["upper"]), log=bool(hp.get("log")))
    if kind == "categorical":
        return CategoricalDistribution(tuple(hp["choices"]))
    raise ValueError(f"unsupported ConfigSpace hyperparameter type {kind!r} ({hp['name']})")


def search_space(scenario: str) -> dict[str, BaseDistribution]:
    """Flat Optuna space: every hyperparameter except the instance and the fidelities, in sorted order."""
    spec = SCENARIOS[scenario]
    skip = {spec.instance_param, *dict(spec.fidelity)}
    hps, _ = _hyperparameters(data_dir(), scenario)
    return {hp["name"]: _distribution(hp) for hp in sorted(hps, key=lambda h: h["name"]) if hp["name"] not in skip}


def condition_holds(cond: dict[str, Any], config: Mapping[str, Any]) -> bool:
    """Whether a ConfigSpace condition (``EQ`` or ``IN`` on one parent) holds in ``config``."""
    value = config.get(cond["parent"])
    if cond["type"] == "EQ":
        return value == cond["value"]
    if cond["type"] == "IN":
        return value in cond["values"]
    raise ValueError(f"unsupported ConfigSpace condition {cond['type']!r}")


# --- the ONNX surrogates ---------------------------------------------------------------------------------------

class Surrogate:
    """One scenario's ONNX model with yahpo-gym's input encoding (single-threaded, CPU)."""

    def __init__(self, folder: Path, scenario: Scenario) -> None:
        import onnxruntime as ort  # optional heavy dependency

        self.scenario = scenario
        self.encoding: dict[str, dict[str, int]] = json.loads((folder / scenario.name / "encoding.json").read_text())
        hps, self.conditions = _hyperparameters(folder, scenario.name)
        self.hyperparameters = {hp["name"]: hp for hp in hps}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # benchmarks run many workers; one thread each
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(folder / scenario.name / "model.onnx"), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]  # [categorical codes, numeric values]
        self._lock = threading.Lock()

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` without the parameters its conditions make inactive (conditions on one parent only)."""
        out = dict(config)
        for cond in self.conditions:
            if cond["child"] in out and not condition_holds(cond, out):
                del out[cond["child"]]
        return out

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(categorical codes int32, numeric float32) model inputs for full configurations (instance and
        fidelities included); inactive or missing parameters become ``#na#`` / 0 as in yahpo-gym."""
        cats = np.empty((len(configs), len(self.scenario.cat_names)), dtype=np.int32)
        conts = np.empty((len(configs), len(self.scenario.cont_names)), dtype=np.float32)
        for row, config in enumerate(configs):
            config = self.active(config)
            for j, name in enumerate(self.scenario.cat_names):
                value = str(config.get(name, "#na#"))
                try:
                    cats[row, j] = self.encoding[name][value]
                except KeyError:
                    raise ValueError(f"{self.scenario.name}: {name}={value!r} is not a known level") from None
            conts[row] = [float(config.get(name, 0)) for name in self.scenario.cont_names]
        return cats, conts

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Model outputs (rows = configurations, columns = ``scenario.y_names``)."""
        cats, conts = self.encode(configs)
        with self._lock:  # one session may be shared by threads
            out = self.session.run(None, {self._inputs[0]: cats, self._inputs[1]: conts})[0]
        return np.asarray(out)


@functools.lru_cache(maxsize=None)
def surrogate(scenario: str, folder: Path) -> Surrogate:
    """The (cached) surrogate of a scenario read from the data folder ``folder``."""
    return Surrogate(folder, check_scenario(scenario))


@dataclass(frozen=True)
class YahpoSurrogate:
    """One YAHPO instance at full fidelity: a minimised, deterministic function of a flat configuration
    (see the module docstring for the objective of each scenario). Construction reads nothing; the data
    folder is looked up when the space or a value is asked for."""

    scenario: str
    instance: str

    @property
    def name(self) -> str:
        return f"{NAME_PREFIX}/{self.scenario}/{self.instance}"

    @property
    def split(self) -> str:
        """``train``, ``validation`` or ``reserved`` (from splits.json)."""
        return split_of(self.scenario, self.instance)

    def search_space(self) -> dict[str, BaseDistribution]:
        """Flat Optuna space: every hyperparameter except the instance and the fidelities, in sorted order."""
        return search_space(self.scenario)

    @property
    def dim(self) -> int:
        return len(self.search_space())

    def full_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` plus the instance and the fixed fidelities."""
        spec = SCENARIOS[self.scenario]
        return {**params, spec.instance_param: self.instance, **dict(spec.fidelity)}

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Objective value (minimise) at a parameter dict; inactive conditional parameters are ignored."""
        return float(self.evaluate_many([params])[0])

    def evaluate_many(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Objective values of many configurations in one surrogate call."""
        model = surrogate(self.scenario, data_dir())
        values = SCENARIOS[self.scenario].objective(model.predict([self.full_config(p) for p in configs]))
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(f"{self.name}: the surrogate returned a non-finite value")
        return values
