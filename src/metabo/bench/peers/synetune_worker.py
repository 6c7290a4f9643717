"""Syne Tune 0.16.0 transfer-learning peer worker (run by path in the ``synetune`` environment).

The past studies come from the caller in ``options["transfer"]`` (a list of tasks, each
``{"name": str, "observations": [[params, value], ...]}`` in this worker's encoding, values minimised); Syne Tune's
blackbox repository is never used (it downloads data). ``options["method"]`` picks the searcher:

* ``quantile``: ``QuantileBasedSurrogateSearcher`` (Salinas et al. 2020, copula Thompson sampling): an XGBoost
  model of the Gaussian-copula-normalised past values, sampled on 100,000 cached random candidates. In Syne Tune
  0.16 it never uses the new task's own observations (``_update`` does nothing).
* ``boundingbox``: ``BoundingBox`` (Perrone et al. 2019) around the best ``num_hyperparameters_per_task``
  (default 1) configurations of each past task, with Syne Tune's ``BOTorch`` scheduler inside the box (3 random
  points in the box, then GP + qLogEI).
* ``zeroshot``: ``ZeroShotTransfer`` (Wistuba et al. 2015): greedy configurations minimising the average rank over
  past tasks; it never uses the new task's observations. The past tasks evaluated different random
  configurations, so each task's values are imputed on one shared candidate set (default 10,000 random
  configurations, 5**d below 6 dimensions) with one XGBoost surrogate per task, built by Syne Tune's own
  ``BlackboxSurrogate.make_model_pipeline``. (Syne Tune's ``use_surrogates=True`` draws a *different* candidate
  set per task while ranking them as if they were the same configurations, and in 0.16 reads
  ``self.random_state`` before setting it; ``options["library_surrogates"] = True`` uses it anyway.)
  ``ZeroShotTransfer.suggest()`` in 0.16 goes to the scheduler's default random-search searcher rather than to
  the zero-shot ranking (``get_config``), so this worker calls ``get_config`` directly.

Silent random fallbacks are counted, never hidden: Syne Tune's BoTorch searcher logs "... sampling randomly" and
returns a random point on any exception; every warning Syne Tune logs is captured by a handler on the root logger
and reported in the ``events`` of the reply to the request during which it was logged
(``random_fallbacks`` for those that announce random sampling, ``warnings`` for all, plus the first messages).
Zero-shot candidates running out (``get_config`` returning None) is also answered with a random point, counted
as ``random_fallbacks``.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import worker_protocol

import numpy as np  # noqa: E402 - after worker_protocol, which pins thread counts and cleans sys.path
import pandas as pd  # noqa: E402
from syne_tune.config_space import Categorical, Domain, choice, lograndint, loguniform, randint, uniform  # noqa: E402
from syne_tune.optimizer.schedulers.transfer_learning.transfer_learning_task_evaluation import (  # noqa: E402
    TransferLearningTaskEvaluations,
)

VERSION_PACKAGES = ("syne-tune", "botorch", "gpytorch", "torch", "numpy", "scipy", "pandas", "scikit-learn",
                    "xgboost", "huggingface_hub")
METRIC = "objective"
METHODS = ("quantile", "boundingbox", "zeroshot")
FALLBACK_MARKERS = ("randomly", "random config", "at random")
MAX_MESSAGES = 5



def _native_choices(config_space: dict) -> dict:
    """BoundingBox builds categorical boxes from numpy values, which Syne Tune's own BoTorch searcher then rejects
    ("must be str, int, or float"): rebuild those domains with plain Python values."""
    from syne_tune.config_space import Categorical, choice

    out = {}
    for name, domain in config_space.items():
        if isinstance(domain, Categorical):
            domain = choice([c.item() if hasattr(c, "item") else c for c in domain.categories])
        out[name] = domain
    return out

class _LogEvents(logging.Handler):
    """Counts warnings logged anywhere (Syne Tune logs its random fallbacks with ``logging.warning``)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.events: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not break the worker
            message = str(record.msg)
        self.add("warnings", 1)
        if any(m in message.lower() for m in FALLBACK_MARKERS):
            self.add("random_fallbacks", 1)
        messages = self.events.setdefault("messages", [])
        if len(messages) < MAX_MESSAGES:
            messages.append(f"{record.name}: {message[:300]}")

    def add(self, key: str, n: int) -> None:
        self.events[key] = self.events.get(key, 0) + n

    def take(self) -> dict[str, Any]:
        out, self.events = self.events, {}
        return out


_HANDLER = _LogEvents()
logging.getLogger().addHandler(_HANDLER)


def _domain(spec: dict[str, Any]) -> Domain:
    if spec["type"] == "categorical":
        return choice(list(range(int(spec["n"]))))
    low, high = spec["low"], spec["high"]
    if spec["type"] == "int":
        return (lograndint if spec.get("log") else randint)(int(low), int(high))
    return (loguniform if spec.get("log") else uniform)(float(low), float(high))


def _plain(space: dict[str, dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in space.items():
        value = config[name]
        out[name] = float(value) if spec["type"] == "float" else int(round(float(value)))
    return out


class SyneTuneTransferWorker:
    def __init__(self, space: dict[str, dict[str, Any]], seed: int, options: dict[str, Any]) -> None:
        self.space = space
        self.seed = int(seed)
        self.method = str(options.get("method", ""))
        if self.method not in METHODS:
            raise ValueError(f"options['method'] must be one of {METHODS}, not {self.method!r}")
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        try:
            import torch

            torch.manual_seed(self.seed)
        except ImportError:
            pass
        self.rng = np.random.RandomState(self.seed % 2**32)
        self.config_space = {name: _domain(spec) for name, spec in space.items()}
        self.tasks = self._tasks(options.get("transfer") or [])
        if not self.tasks:
            raise ValueError("Syne Tune transfer searchers need past tasks in options['transfer'] (none given or "
                             "none with two or more complete observations)")
        self.startup_trials = 0
        self.scheduler: Any = None
        self.searcher: Any = None
        if self.method == "quantile":
            from syne_tune.optimizer.schedulers.transfer_learning.quantile_based.quantile_based_searcher import (
                QuantileBasedSurrogateSearcher,
            )

            self.searcher = QuantileBasedSurrogateSearcher(
                self.config_space, self.tasks, max_fit_samples=int(options.get("max_fit_samples", 100000)),
                normalization=str(options.get("normalization", "gaussian")), random_seed=self.seed)
        elif self.method == "boundingbox":
            from syne_tune.optimizer.baselines import BOTorch
            from syne_tune.optimizer.schedulers.transfer_learning.bounding_box import BoundingBox

            def scheduler_fun(new_space: dict, metric: str, do_minimize: bool, random_seed: int) -> Any:
                return BOTorch(_native_choices(new_space), metric=metric, do_minimize=do_minimize,
                               random_seed=random_seed)

            self.scheduler = BoundingBox(scheduler_fun, self.config_space, METRIC, self.tasks, do_minimize=True,
                                         num_hyperparameters_per_task=int(options.get("num_hyperparameters_per_task",
                                                                                      1)),
                                         random_seed=self.seed)
            self.searcher = self.scheduler.scheduler.searcher
            self.box = self.scheduler.scheduler.config_space
            self.startup_trials = int(getattr(self.searcher, "num_minimum_observations", 0))
            self.outside_box = 0
        else:
            from syne_tune.optimizer.schedulers.transfer_learning.zero_shot import ZeroShotTransfer

            if options.get("library_surrogates"):
                self.scheduler = ZeroShotTransfer(self.config_space, METRIC, self.tasks, do_minimize=True,
                                                  use_surrogates=True, random_seed=self.seed)
            else:
                n = options.get("n_candidates") or (10000 if len(space) >= 6 else 5 ** len(space))
                imputed = self._impute(int(n))
                self.scheduler = ZeroShotTransfer(self.config_space, METRIC, imputed, do_minimize=True,
                                                  sort_transfer_learning_evaluations=False, use_surrogates=False,
                                                  random_seed=self.seed)

    # -- transfer data

    def _tasks(self, transfer: list[dict[str, Any]]) -> dict[str, TransferLearningTaskEvaluations]:
        out: dict[str, TransferLearningTaskEvaluations] = {}
        names = list(self.space)
        for i, task in enumerate(transfer):
            rows, values = [], []
            for params, value in task.get("observations", []):
                if all(n in params for n in names) and value is not None and np.isfinite(float(value)):
                    rows.append(_plain(self.space, params))
                    values.append(float(value))
            if len(rows) < 2:
                continue
            name = str(task.get("name") or f"task{i}")
            out[name if name not in out else f"{name}#{i}"] = TransferLearningTaskEvaluations(
                configuration_space=self.config_space, hyperparameters=pd.DataFrame(rows, columns=names),
                objectives_names=[METRIC], objectives_evaluations=np.asarray(values, dtype=float).reshape(-1, 1, 1, 1))
        return out

    def _impute(self, n: int) -> dict[str, TransferLearningTaskEvaluations]:
        import xgboost
        from syne_tune.blackbox_repository.blackbox_surrogate import BlackboxSurrogate

        candidates = pd.DataFrame({name: list(domain.sample(size=n, random_state=self.rng))
                                   for name, domain in self.config_space.items()})
        out: dict[str, TransferLearningTaskEvaluations] = {}
        for name, task in self.tasks.items():
            model = BlackboxSurrogate.make_model_pipeline(configuration_space=self.config_space, fidelity_space={},
                                                          model=xgboost.XGBRegressor(random_state=self.seed))
            model.fit(task.hyperparameters, task.objective_values(METRIC).reshape(-1))
            predicted = np.asarray(model.predict(candidates), dtype=float).reshape(-1, 1, 1, 1)
            out[name] = TransferLearningTaskEvaluations(configuration_space=self.config_space,
                                                        hyperparameters=candidates.copy(), objectives_names=[METRIC],
                                                        objectives_evaluations=predicted)
        return out

    # -- ask/tell

    def _random(self) -> dict[str, Any]:
        _HANDLER.add("random_fallbacks", 1)
        return {name: domain.sample(random_state=self.rng) for name, domain in self.config_space.items()}

    def ask(self) -> tuple[dict[str, Any], Any]:
        if self.method == "quantile":
            return _plain(self.space, self.searcher.suggest()), None
        if self.method == "zeroshot":
            config = self.scheduler.get_config()
            return _plain(self.space, config if config is not None else self._random()), None
        suggestion = self.scheduler.suggest()
        config = suggestion.config if suggestion is not None and suggestion.config is not None else None
        if config is None:
            return _plain(self.space, self._random()), None
        return _plain(self.space, config), int(self.searcher.num_suggestions()) - 1

    def tell(self, params: dict[str, Any], value: float, token: Any) -> None:
        if self.method != "boundingbox":
            return  # Syne Tune 0.16's quantile and zero-shot searchers do not use the new task's observations
        config = _plain(self.space, params)
        if token is None:
            if not self._in_box(config):
                self.outside_box += 1
                _HANDLER.add("told_outside_box", 1)
                return
            token = len(self.searcher.trial_configs)
            self.searcher.trial_configs[token] = config
        self.searcher.on_trial_complete(int(token), config, float(value))

    def _in_box(self, config: dict[str, Any]) -> bool:
        for name, domain in self.box.items():
            value = config[name]
            if isinstance(domain, Categorical):
                if value not in domain.categories:
                    return False
            elif hasattr(domain, "lower") and not domain.lower <= value <= domain.upper:
                return False
        return True

    def take_events(self) -> dict[str, Any]:
        return _HANDLER.take()


if __name__ == "__main__":
    worker_protocol.serve(SyneTuneTransferWorker, VERSION_PACKAGES)
