"""Bayesmark-style model tuning: cross-validated scikit-learn models (``sklearn/<model>/<dataset>/<metric>``).

Each problem tunes one scikit-learn model (``MODELS``) on one of the datasets bundled with scikit-learn
(``DATASETS``; nothing is downloaded) and minimises a cross-validated metric:

- classification: ``error`` (1 - accuracy) or ``logloss`` (cross-entropy of the predicted probabilities);
- regression: ``mse`` or ``mae`` on the standardised target (z-scored over the whole dataset, so a constant
  prediction of the mean scores about 1 on ``mse``).

Every model is a pipeline ``StandardScaler -> model``. The value is the mean over ``N_FOLDS`` folds of a
(Stratified)KFold with the fixed seed ``CV_SEED``, and every model gets ``random_state=MODEL_SEED``, so
``evaluate`` is deterministic. A fold whose predictions are not finite (a diverged SGD or MLP) scores the
metric's cap (``METRIC_CAP``), and each fold's score is clipped there, so the objective stays finite and
bounded. Fitting runs on one thread (``threadpoolctl``) with ``n_jobs=1``; iteration counts are capped so one
evaluation takes about 0.1-1.5 s on one core. Search spaces follow Bayesmark's (log-scaled floats and ints,
a categorical where it is natural); ``known_optimum`` is ``None``.

``problems()`` lists the default matrix: six models x {breast_cancer/logloss, digits/error, diabetes/mse}.
Any other valid (model, dataset, metric) combination can be built directly with ``SklearnProblem``.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

FAMILY = "sklearn"
N_FOLDS = 3
CV_SEED = 0
MODEL_SEED = 0
RANDOM_MEDIAN_POINTS = 200
CLASSIFICATION_METRICS = ("error", "logloss")
REGRESSION_METRICS = ("mse", "mae")
METRIC_CAP = {"error": 1.0, "logloss": 10.0, "mse": 10.0, "mae": 10.0}

# dataset -> (scikit-learn loader name, is classification)
DATASETS: dict[str, tuple[str, bool]] = {
    "iris": ("load_iris", True),
    "wine": ("load_wine", True),
    "breast_cancer": ("load_breast_cancer", True),
    "digits": ("load_digits", True),
    "diabetes": ("load_diabetes", False),
}

DEFAULT_TASKS = (("breast_cancer", "logloss"), ("digits", "error"), ("diabetes", "mse"))


def _log_float(low: float, high: float) -> FloatDistribution:
    return FloatDistribution(low, high, log=True)


def _log_int(low: int, high: int) -> IntDistribution:
    return IntDistribution(low, high, log=True)


@dataclass(frozen=True)
class ModelSpec:
    """A tunable model: its search space and a factory ``(params, classification) -> estimator``."""

    space: dict[str, BaseDistribution]
    build: Callable[[Mapping[str, Any], bool], Any]


def _hgb(p: Mapping[str, Any], clf: bool) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
    return cls(early_stopping=False, random_state=MODEL_SEED, learning_rate=p["learning_rate"],
               max_iter=int(p["max_iter"]), max_leaf_nodes=int(p["max_leaf_nodes"]),
               min_samples_leaf=int(p["min_samples_leaf"]), l2_regularization=p["l2_regularization"],
               max_features=p["max_features"])


def _rf(p: Mapping[str, Any], clf: bool) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if clf else RandomForestRegressor
    return cls(n_estimators=30, n_jobs=1, random_state=MODEL_SEED, max_depth=int(p["max_depth"]),
               max_features=p["max_features"], min_samples_split=int(p["min_samples_split"]),
               min_samples_leaf=int(p["min_samples_leaf"]), bootstrap=bool(p["bootstrap"]))


def _svm(p: Mapping[str, Any], clf: bool) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC, SVR

    if clf:
        svc = SVC(C=p["C"], gamma=p["gamma"], tol=p["tol"], random_state=MODEL_SEED)
        if p.get("_probability", False):  # Platt-scaled probabilities (3 inner fits) only where the metric needs them
            return CalibratedClassifierCV(svc, method="sigmoid", cv=3, ensemble=False)
        return svc
    return SVR(C=p["C"], gamma=p["gamma"], tol=p["tol"], epsilon=p["epsilon"])


def _mlp(p: Mapping[str, Any], clf: bool) -> Any:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPClassifier if clf else MLPRegressor
    # max_iter (epochs) is capped so an evaluation stays around a second; most settings converge before it.
    return cls(hidden_layer_sizes=(int(p["hidden_layer_size"]),), activation=p["activation"], alpha=p["alpha"],
               batch_size=int(p["batch_size"]), learning_rate_init=p["learning_rate_init"], max_iter=30,
               random_state=MODEL_SEED)


def _knn(p: Mapping[str, Any], clf: bool) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsClassifier if clf else KNeighborsRegressor
    return cls(n_neighbors=int(p["n_neighbors"]), p=int(p["p"]), weights=p["weights"], n_jobs=1)


def _linear(p: Mapping[str, Any], clf: bool) -> Any:
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    common = dict(penalty="elasticnet", alpha=p["alpha"], l1_ratio=p["l1_ratio"], eta0=p["eta0"],
                  learning_rate=p["learning_rate"], max_iter=50, tol=1e-4, random_state=MODEL_SEED)
    if clf:  # log loss so the model has predict_proba for the logloss metric
        return SGDClassifier(loss="log_loss", **common)
    return SGDRegressor(**common)


MODELS: dict[str, ModelSpec] = {
    "hgb": ModelSpec({
        "learning_rate": _log_float(1e-3, 1.0),
        "max_iter": _log_int(8, 64),
        "max_leaf_nodes": _log_int(4, 64),
        "min_samples_leaf": _log_int(2, 64),
        "l2_regularization": _log_float(1e-6, 10.0),
        "max_features": FloatDistribution(0.1, 1.0),
    }, _hgb),
    "rf": ModelSpec({
        "max_depth": _log_int(1, 16),
        "max_features": _log_float(0.05, 1.0),
        "min_samples_split": _log_int(2, 32),
        "min_samples_leaf": _log_int(1, 16),
        "bootstrap": CategoricalDistribution((False, True)),
    }, _rf),
    "svm": ModelSpec({
        "C": _log_float(1e-2, 1e3),
        "gamma": _log_float(1e-4, 1.0),
        "tol": _log_float(1e-5, 1e-1),
        "epsilon": _log_float(1e-3, 1.0),  # SVR only; ignored for classification
    }, _svm),
    "mlp": ModelSpec({
        "hidden_layer_size": _log_int(16, 256),
        "activation": CategoricalDistribution(("relu", "tanh")),
        "alpha": _log_float(1e-5, 10.0),
        "batch_size": _log_int(32, 256),
        "learning_rate_init": _log_float(1e-5, 1e-1),
    }, _mlp),
    "knn": ModelSpec({
        "n_neighbors": _log_int(1, 32),
        "p": IntDistribution(1, 2),  # Manhattan or Euclidean; p > 2 has no fast tree search and is slow
        "weights": CategoricalDistribution(("uniform", "distance")),
    }, _knn),
    "linear": ModelSpec({
        "alpha": _log_float(1e-6, 1.0),
        "l1_ratio": FloatDistribution(0.0, 1.0),
        "eta0": _log_float(1e-4, 1.0),
        "learning_rate": CategoricalDistribution(("constant", "optimal", "invscaling", "adaptive")),
    }, _linear),
}


@functools.lru_cache(maxsize=None)
def load_dataset(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a bundled scikit-learn dataset; regression targets are z-scored. Cached per process."""
    import sklearn.datasets

    loader, classification = DATASETS[dataset]
    x, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    x = np.asarray(x, np.float64)
    if not classification:
        y = (y - y.mean()) / y.std()
    return x, y


@functools.lru_cache(maxsize=None)
def cv_splits(dataset: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The fixed train/test index pairs of ``dataset`` (stratified for classification)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    x, y = load_dataset(dataset)
    cls = StratifiedKFold if DATASETS[dataset][1] else KFold
    return tuple(cls(N_FOLDS, shuffle=True, random_state=CV_SEED).split(x, y))


def _fold_score(model: Any, metric: str, x_test: np.ndarray, y_test: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    if metric == "logloss":
        pred = model.predict_proba(x_test)
        if not np.all(np.isfinite(pred)):
            return METRIC_CAP[metric]
        return float(log_loss(y_test, pred, labels=labels))
    pred = model.predict(x_test)
    if metric == "error":
        return float(np.mean(pred != y_test))
    if not np.all(np.isfinite(pred)):
        return METRIC_CAP[metric]
    err = pred - y_test
    return float(np.mean(err**2) if metric == "mse" else np.mean(np.abs(err)))


@dataclass(frozen=True)
class SklearnProblem:
    """Minimise the cross-validated ``metric`` of ``model`` on ``dataset`` (cheap to build and pickle)."""

    model: str
    dataset: str
    metric: str
    known_optimum: float | None = None
    random_median_points: int = RANDOM_MEDIAN_POINTS

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known: {sorted(MODELS)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {sorted(DATASETS)}")
        allowed = CLASSIFICATION_METRICS if DATASETS[self.dataset][1] else REGRESSION_METRICS
        if self.metric not in allowed:
            raise ValueError(f"metric for {self.dataset!r} must be one of {allowed}, got {self.metric!r}")

    @property
    def name(self) -> str:
        return f"{FAMILY}/{self.model}/{self.dataset}/{self.metric}"

    @property
    def family(self) -> str:
        return FAMILY

    @property
    def dim(self) -> int:
        return len(self.search_space())

    def search_space(self) -> dict[str, BaseDistribution]:
        """Hyperparameter name -> distribution; SVM's ``epsilon`` only exists for regression."""
        space = dict(MODELS[self.model].space)
        if self.model == "svm" and DATASETS[self.dataset][1]:
            del space["epsilon"]
        return space

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Mean cross-validated metric (minimise; deterministic) of the model with these hyperparameters."""
        return self.evaluate_model({k: params[k] for k in self.search_space()})

    def evaluate_model(self, chosen: Mapping[str, Any]) -> float:
        """``evaluate`` for a dict of every argument the model's factory reads (``MODELS[model].build``)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from threadpoolctl import threadpool_limits

        classification = DATASETS[self.dataset][1]
        chosen = {**chosen, "_probability": self.metric == "logloss"}
        x, y = load_dataset(self.dataset)
        labels = np.unique(y) if classification else y[:0]
        cap = METRIC_CAP[self.metric]
        scores = []
        # One thread for OpenMP/BLAS (HGB, MLP) so evaluations are cheap to run side by side and unaffected
        # by the machine's core count; convergence warnings are expected at capped iteration counts.
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # overflow in a diverging SGD / MLP
            for train, test in cv_splits(self.dataset):
                model = make_pipeline(StandardScaler(), MODELS[self.model].build(chosen, classification))
                try:
                    model.fit(x[train], y[train])
                except ValueError as exc:  # SGD refuses to go on once its weights overflow: a diverged fit
                    if "overflow" not in str(exc):
                        raise
                    scores.append(cap)
                    continue
                scores.append(min(_fold_score(model, self.metric, x[test], y[test], labels), cap))
        return float(np.mean(scores))


def problems() -> list[SklearnProblem]:
    """The default matrix: every model x ``DEFAULT_TASKS`` (breast_cancer/logloss, digits/error, diabetes/mse)."""
    return [SklearnProblem(m, d, metric) for m in MODELS for d, metric in DEFAULT_TASKS]


def get_problem(name: str) -> SklearnProblem:
    """The problem called ``name`` (``sklearn/<model>/<dataset>/<metric>``), in the default matrix or not."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != FAMILY:
        raise KeyError(f"unknown problem name {name!r}; expected e.g. 'sklearn/svm/digits/error'")
    try:
        return SklearnProblem(*parts[1:])
    except ValueError as exc:
        raise KeyError(str(exc)) from exc
