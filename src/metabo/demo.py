"""``metabo demo``: tune a scikit-learn model with TNPSampler and with Optuna's TPE, side by side.

The task: HistGradientBoostingClassifier on scikit-learn's bundled digits data (1797 images, 10 classes),
3-fold cross-validated accuracy, six hyperparameters. Both samplers get the same seed, the same folds and the
same number of trials; both studies land in one SQLite file, so they can be opened again with Optuna (or
optuna-dashboard) afterwards. Written to ``out_dir``: ``demo.db``, ``summary.md`` and ``best_so_far.png``.

A suggestion's time is the time a trial spends inside its sampler's methods (``_TimedSampler``): the sampler's
own cost, its own storage reads and writes included, but not the bookkeeping that ``study.ask`` and ``study.tell``
do for any sampler.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from metabo.sampler import TNPSampler

SEARCH_SPACE = {
    "learning_rate": FloatDistribution(0.01, 0.5, log=True),
    "max_iter": IntDistribution(10, 50),
    "max_leaf_nodes": IntDistribution(4, 16, log=True),
    "min_samples_leaf": IntDistribution(2, 40),
    "l2_regularization": FloatDistribution(1e-6, 10.0, log=True),
    "max_features": FloatDistribution(0.2, 1.0),
}
N_FOLDS = 3


@dataclass
class _Run:
    """One sampler's study, with what the summary reports."""

    label: str
    study_name: str
    values: list[float]
    params: list[dict[str, Any]]
    sampler_seconds: list[float]
    total_seconds: float

    @property
    def best(self) -> float:
        return max(self.values)

    @property
    def trials_to_best(self) -> int:
        """How many trials it took to first reach the best value (1 = the first trial)."""
        return self.values.index(self.best) + 1

    @property
    def best_params(self) -> dict[str, Any]:
        return self.params[self.trials_to_best - 1]

    @property
    def best_so_far(self) -> np.ndarray:
        return np.maximum.accumulate(np.asarray(self.values))


class _Objective:
    """3-fold cross-validated accuracy of HistGradientBoostingClassifier on digits (deterministic per seed)."""

    def __init__(self, seed: int, n_jobs: int) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import StratifiedKFold

        self.x, self.y = load_digits(return_X_y=True)
        self.folds = StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed)
        self.seed = seed
        self.n_jobs = n_jobs
        self({"max_iter": 1})  # start the worker processes now, so the first sampler's clock does not pay for it

    def __call__(self, params: dict[str, Any]) -> float:
        from joblib import parallel_config
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import cross_val_score

        model = HistGradientBoostingClassifier(early_stopping=False, random_state=self.seed, **params)
        # Folds run in parallel worker processes, each tree builder on one thread: on a small machine this is
        # both the fastest and the least sensitive to other load (OpenMP threads on busy cores stall badly).
        with parallel_config(backend="loky", inner_max_num_threads=1):
            scores = cross_val_score(model, self.x, self.y, cv=self.folds, n_jobs=self.n_jobs)
        return float(np.mean(scores))


class _TimedSampler(BaseSampler):
    """Delegates to ``inner`` and adds up the seconds spent in it (``seconds``; reset it per trial)."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0

    def _timed(self, method, *args):
        start = time.perf_counter()
        try:
            return method(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._timed(self.inner.infer_relative_search_space, study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._timed(self.inner.sample_relative, study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._timed(self.inner.sample_independent, study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._timed(self.inner.before_trial, study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._timed(self.inner.after_trial, study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def _fresh_study(name: str, storage: optuna.storages.BaseStorage, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction="maximize")


def _run_study(label: str, study: optuna.Study, objective: _Objective, n_trials: int) -> _Run:
    sampler = study.sampler
    assert isinstance(sampler, _TimedSampler)
    values: list[float] = []
    params: list[dict[str, Any]] = []
    sampler_seconds: list[float] = []
    start = time.perf_counter()
    with tqdm(total=n_trials, desc=f"{label:>6}", unit="trial", dynamic_ncols=True) as bar:
        for _ in range(n_trials):
            sampler.seconds = 0.0
            trial = study.ask(SEARCH_SPACE)  # samples every parameter now
            value = objective(trial.params)
            study.tell(trial, value)
            sampler_seconds.append(sampler.seconds)
            values.append(value)
            params.append(trial.params)
            bar.set_postfix(best=f"{max(values):.4f}", last=f"{value:.4f}")
            bar.update()
    total = time.perf_counter() - start
    return _Run(label, study.study_name, values, params, sampler_seconds, total)


def _table(runs: list[_Run]) -> str:
    header = "| sampler | best CV accuracy | trials to reach it | median s / suggestion | total s |"
    rule = "|---|---:|---:|---:|---:|"
    rows = [
        f"| {r.label} | {r.best:.4f} | {r.trials_to_best} | {statistics.median(r.sampler_seconds):.3f} | {r.total_seconds:.1f} |"
        for r in runs
    ]
    return "\n".join([header, rule, *rows])


def _plot(runs: list[_Run], n_trials: int, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    trials = np.arange(1, n_trials + 1)
    for z, (run, colour) in enumerate(zip(runs, ("tab:blue", "tab:orange"))):
        ax.scatter(trials, run.values, s=14, color=colour, alpha=0.35, linewidths=0, zorder=2)
        # metabo's line on top: both samplers share their random startup trials, so the lines overlap there.
        ax.step(trials, run.best_so_far, where="post", color=colour, linewidth=2, zorder=4 - z,
                label=f"{run.label} (best {run.best:.4f})")
    highest = max(r.best for r in runs)
    lowest = max(min(min(r.values) for r in runs), highest - 0.05)  # very poor trials fall below the axis
    margin = max(0.002, 0.05 * (highest - lowest))
    ax.set_ylim(lowest - margin, highest + margin)
    ax.set_xlim(0.5, n_trials + 0.5)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{N_FOLDS}-fold CV accuracy")
    ax.set_title("HistGradientBoostingClassifier on digits: best so far (dots: each trial)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def run_demo(n_trials: int = 40, out_dir: Path = Path("metabo_demo"), seed: int = 0) -> None:
    """Tune HistGradientBoostingClassifier on digits with TNPSampler and TPE; write db, table and plot."""
    if n_trials < 1:
        raise ValueError("n_trials must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    objective = _Objective(seed, n_jobs=min(N_FOLDS, cores))
    storage = optuna.storages.RDBStorage(f"sqlite:///{(out_dir / 'demo.db').resolve()}")

    print(
        f"Tuning HistGradientBoostingClassifier on digits ({len(objective.y)} images, 10 classes): "
        f"{N_FOLDS}-fold CV accuracy, {len(SEARCH_SPACE)} hyperparameters, {n_trials} trials per sampler, seed {seed}."
    )
    previous_threads = torch.get_num_threads()
    previous_verbosity = optuna.logging.get_verbosity()
    # The model is small: one thread is nearly as fast as two on a free machine, and far faster on a busy one
    # (intra-op threads spin-wait for each other when another process holds a core).
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        samplers = [
            ("metabo", "demo-metabo", TNPSampler(seed=seed)),
            ("TPE", "demo-tpe", optuna.samplers.TPESampler(multivariate=True, seed=seed)),
        ]
        runs = [
            _run_study(label, _fresh_study(name, storage, _TimedSampler(sampler)), objective, n_trials)
            for label, name, sampler in samplers
        ]
    finally:
        torch.set_num_threads(previous_threads)
        optuna.logging.set_verbosity(previous_verbosity)

    table = _table(runs)
    _plot(runs, n_trials, out_dir / "best_so_far.png")
    params = "\n".join(
        f"- {r.label} ({r.study_name}): "
        + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(r.best_params.items()))
        for r in runs
    )
    (out_dir / "summary.md").write_text(
        f"# metabo demo\n\n"
        f"HistGradientBoostingClassifier on scikit-learn's digits, {N_FOLDS}-fold CV accuracy (maximised), "
        f"{n_trials} trials per sampler, seed {seed}. Command: `metabo demo --trials {n_trials} --seed {seed}`.\n\n"
        f"{table}\n\n"
        f"Seconds per suggestion: time spent inside the sampler's methods for one trial (Optuna's own ask/tell "
        f"bookkeeping excluded). Trials to reach it: 1 is the first trial.\n\n"
        f"Best parameters:\n\n{params}\n\n![best so far](best_so_far.png)\n"
    )
    print()
    print(table)
    print()
    print(f"Studies: {out_dir / 'demo.db'} (study names: {', '.join(r.study_name for r in runs)})")
    print(f"Plot:    {out_dir / 'best_so_far.png'}")
    print(f"Table:   {out_dir / 'summary.md'}")
