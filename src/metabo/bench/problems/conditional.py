"""Conditional search spaces, suggested define-by-run (``conditional/...``).

A problem here has a ``suggest(trial) -> params`` method: the runner asks the study for an empty trial and the
problem suggests only the parameters its earlier choices make active, as an Optuna user's objective does. Its
``search_space()`` is the flat union of every parameter (for references such as the random median);
``evaluate`` ignores the parameters a configuration leaves inactive.

* ``conditional/cash/<dataset>/<metric>``: combined algorithm selection and hyperparameter optimisation: a
  ``classifier`` choice (an SVM, a random forest, k-nearest neighbours or an elastic-net linear model) and that
  model's own hyperparameters (``svm_C``, ``rf_max_depth``, ...), cross-validated on a scikit-learn dataset with
  the models, folds and metrics of ``sklearn_tuning``. 14 encoded dimensions.
* ``conditional/rbv2_xgboost/<instance>``: YAHPO's rbv2_xgboost surrogate with its booster-conditional space
  (``eta``, ``max_depth``, ... only for the tree boosters; ``rate_drop`` and ``skip_drop`` only for ``dart``), on
  the scenario's validation instances.

``conditions()`` states the structure for optimisers that take it declared (SMAC3's ConfigSpace conditions):
one ``metabo.conditions.Condition`` per conditional parameter (the form metabo infers from trials).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import BaseTrial

from metabo.bench.problems import sklearn_tuning as sk
from metabo.bench.problems.base import CHEAP_RANDOM_MEDIAN_POINTS
from metabo.conditions import Condition
from metabo.meta.yahpo import (NAME_PREFIX, YahpoSurrogate, check_instance, condition_holds, data_dir, instances,
                               surrogate, unavailable_reason)

FAMILY = "conditional"
CASH_TASKS = (("breast_cancer", "logloss"), ("digits", "error"), ("diabetes", "mse"))
XGBOOST = "rbv2_xgboost"

# classifier -> its own hyperparameters (a subset of sklearn_tuning's spaces) and the fixed values of the rest
CASH_MODELS: dict[str, tuple[dict[str, BaseDistribution], dict[str, Any]]] = {
    "svm": ({"C": sk.MODELS["svm"].space["C"], "gamma": sk.MODELS["svm"].space["gamma"]},
            {"tol": 1e-3, "epsilon": 0.1}),
    "rf": ({"max_depth": sk.MODELS["rf"].space["max_depth"], "max_features": sk.MODELS["rf"].space["max_features"],
            "min_samples_split": sk.MODELS["rf"].space["min_samples_split"]},
           {"min_samples_leaf": 1, "bootstrap": True}),
    "knn": ({"n_neighbors": sk.MODELS["knn"].space["n_neighbors"], "weights": sk.MODELS["knn"].space["weights"]},
            {"p": 2}),
    "linear": ({"alpha": sk.MODELS["linear"].space["alpha"], "l1_ratio": FloatDistribution(0.0, 1.0)},
               {"eta0": 0.01, "learning_rate": "optimal"}),
}
CLASSIFIER = "classifier"


def _suggest(trial: BaseTrial, name: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*`` for a distribution of any kind."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


@dataclass(frozen=True)
class CashProblem:
    """Choose a scikit-learn model and its own hyperparameters; minimise the cross-validated ``metric``."""

    dataset: str
    metric: str
    known_optimum: float | None = None
    random_median_points: int = sk.RANDOM_MEDIAN_POINTS
    family: str = FAMILY

    @property
    def name(self) -> str:
        return f"{FAMILY}/cash/{self.dataset}/{self.metric}"

    @property
    def dim(self) -> int:
        return len(self.search_space())

    @property
    def sort_key(self) -> tuple[str, str]:
        return ("cash", self.dataset)

    def search_space(self) -> dict[str, BaseDistribution]:
        """Every parameter of every model (``<model>_<name>``) and the ``classifier`` choice."""
        space: dict[str, BaseDistribution] = {CLASSIFIER: CategoricalDistribution(tuple(CASH_MODELS))}
        for model, (own, _) in CASH_MODELS.items():
            space.update({f"{model}_{name}": dist for name, dist in own.items()})
        return space

    def suggest(self, trial: BaseTrial) -> dict[str, Any]:
        """The classifier, then its own hyperparameters only."""
        space = self.search_space()
        model = _suggest(trial, CLASSIFIER, space[CLASSIFIER])
        for name in CASH_MODELS[model][0]:
            _suggest(trial, f"{model}_{name}", space[f"{model}_{name}"])
        return dict(trial.params)

    def conditions(self) -> list[Condition]:
        return [Condition(f"{model}_{name}", CLASSIFIER, frozenset({index}))
                for index, (model, (own, _)) in enumerate(CASH_MODELS.items()) for name in own]

    def evaluate(self, params: Mapping[str, Any]) -> float:
        model = params[CLASSIFIER]
        own, fixed = CASH_MODELS[model]
        chosen = {**fixed, **{name: params[f"{model}_{name}"] for name in own}}
        tuned = sk.SklearnProblem(model, self.dataset, self.metric)
        return tuned.evaluate_model(chosen)


@dataclass(frozen=True)
class ConditionalYahpo(YahpoSurrogate):
    """A YAHPO instance whose parameters are suggested only where the scenario's conditions hold."""

    known_optimum = None
    random_median_points = CHEAP_RANDOM_MEDIAN_POINTS
    family = FAMILY

    @property
    def name(self) -> str:
        return f"{FAMILY}/{self.scenario}/{self.instance}"

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.scenario, self.instance)

    def conditions(self) -> list[Condition]:
        space = self.search_space()
        return [Condition(c["child"], c["parent"],
                          frozenset(int(space[c["parent"]].to_internal_repr(v))
                                    for v in (c["values"] if c["type"] == "IN" else [c["value"]])))
                for c in surrogate(self.scenario, data_dir()).conditions]

    def suggest(self, trial: BaseTrial) -> dict[str, Any]:
        """Unconditional parameters first (sorted), then each conditional one whose conditions hold."""
        conditions = surrogate(self.scenario, data_dir()).conditions
        children = {c["child"] for c in conditions}
        space = self.search_space()
        params: dict[str, Any] = {}
        for name in sorted(space, key=lambda n: (n in children, n)):  # the scenarios' parents are unconditional
            if all(condition_holds(c, params) for c in conditions if c["child"] == name):
                params[name] = _suggest(trial, name, space[name])
        return params


def problems() -> list[Any]:
    """The CASH tasks, and rbv2_xgboost's validation instances with its conditional space (where the YAHPO data
    is available)."""
    yahpo = [] if unavailable_reason(XGBOOST) is not None else instances(XGBOOST, ("validation",))
    return [*(CashProblem(d, m) for d, m in CASH_TASKS), *(ConditionalYahpo(XGBOOST, i) for i in yahpo)]


def get_problem(name: str) -> Any:
    """``conditional/cash/<dataset>/<metric>`` or ``conditional/rbv2_xgboost/<instance>``."""
    parts = name.split("/")
    if len(parts) == 4 and parts[:2] == [FAMILY, "cash"]:
        if (parts[2], parts[3]) not in CASH_TASKS:
            raise KeyError(f"unknown CASH task {name!r}; known: {[f'{d}/{m}' for d, m in CASH_TASKS]}")
        return CashProblem(parts[2], parts[3])
    if len(parts) == 3 and parts[:2] == [FAMILY, XGBOOST]:
        check_instance(XGBOOST, parts[2], False)
        return ConditionalYahpo(XGBOOST, parts[2])
    raise KeyError(f"unknown problem name {name!r}; expected 'conditional/cash/digits/error' or "
                   f"'conditional/{XGBOOST}/<instance>' ({NAME_PREFIX} validation instances)")
