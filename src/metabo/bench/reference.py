"""Reference values of problems without a known optimum: the random median and a long reference search.

* ``random_sample``: ``problem.random_median_points`` configurations drawn independently and uniformly from
  the search space (RandomSampler-style: floats and ints uniform on their linear or log scale, categoricals
  uniform over choices) with the fixed seed ``RANDOM_MEDIAN_SEED``; their median is the random median and their
  best value the first reference optimum. Both are cached in the results store by the runner.
* ``reference_search``: a long search for the best value: multivariate TPE for a few hundred evaluations, then a
  (1+1)-evolution strategy in the unit-cube encoding of the space (Gaussian steps on numeric parameters with the
  1/5th success rule, occasional categorical resampling), restarted from the best points so far whenever the
  step size collapses. The store keeps its best value; the report's reference optimum is the best value ever
  seen for the problem (random sample, every optimiser's runs, every reference search).

Constrained problems use their *feasible* values throughout: the random median is the median objective of the
feasible random points, and an infeasible point counts as ``inf`` in the random sample's best and in the
reference search. Multi-objective problems need neither: their reference is a Pareto front (``reference_json``
in the store, from the problem), and no reference search runs for them. Iterative problems (``pruning/...``)
use their final values (the curve at the last epoch): a pruned trial's last reported value never becomes a
reference.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from metabo.bench.problems.base import CHEAP_RANDOM_MEDIAN_POINTS, evaluate_outcome, kind_of
from metabo.bench.store import FINAL, ResultStore

RANDOM_MEDIAN_SEED = 20240101  # the same seed as BBOB's random median
REFERENCE_TPE_TRIALS = 300  # TPE's per-suggestion cost grows with trials; the local search takes over after this
_CHUNK = 1000


def sample_configs(space: Mapping[str, BaseDistribution], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` independent uniform configurations of ``space`` (each parameter drawn on its own scale)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, list[Any]] = {}
    for name, dist in space.items():
        columns[name] = _sample_column(dist, n, rng)
    return [{name: columns[name][i] for name in space} for i in range(n)]


def _sample_column(dist: BaseDistribution, n: int, rng: np.random.Generator) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return [dist.choices[i] for i in rng.integers(0, len(dist.choices), size=n)]
    u = rng.random(n)
    if isinstance(dist, IntDistribution):
        if dist.log:  # each integer owns the log-slice between its half-way points, as Optuna does
            lo, hi = math.log(dist.low - 0.5), math.log(dist.high + 0.5)
            values = np.rint(np.exp(lo + u * (hi - lo)))
        else:
            steps = (dist.high - dist.low) // dist.step
            values = dist.low + dist.step * np.floor(u * (steps + 1))
        return [int(v) for v in np.clip(values, dist.low, dist.high)]
    if isinstance(dist, FloatDistribution):
        if dist.log:
            values = np.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
        elif dist.step is not None:
            steps = round((dist.high - dist.low) / dist.step)
            values = dist.low + dist.step * np.floor(u * (steps + 1))
        else:
            values = dist.low + u * (dist.high - dist.low)
        return [float(v) for v in np.clip(values, dist.low, dist.high)]
    raise TypeError(f"unsupported distribution {dist!r}")


class FeasibleObjective:
    """A constrained problem seen as a scalar one: the objective where feasible, ``inf`` elsewhere."""

    def __init__(self, problem: Any) -> None:
        self.problem = problem

    def search_space(self) -> dict[str, BaseDistribution]:
        return self.problem.search_space()

    def evaluate(self, params: Mapping[str, Any]) -> float:
        outcome = evaluate_outcome(self.problem, params)
        return float(outcome.values[0]) if outcome.feasible else math.inf


def evaluate_all(problem: Any, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Values of many configurations (in batches where the problem offers ``evaluate_many``); for a constrained
    problem the objective where feasible and ``inf`` elsewhere."""
    if kind_of(problem) == "constrained":
        problem = FeasibleObjective(problem)
    if hasattr(problem, "evaluate_many"):
        return np.concatenate([np.asarray(problem.evaluate_many(configs[i:i + _CHUNK]), dtype=np.float64)
                               for i in range(0, len(configs), _CHUNK)]) if configs else np.empty(0)
    return np.array([float(problem.evaluate(c)) for c in configs], dtype=np.float64)


@dataclass
class RandomSample:
    """The random-median sample of a problem."""

    median: float
    best_value: float
    best_params: dict[str, Any]
    points: int
    seed: int


def random_sample(problem: Any, seed: int = RANDOM_MEDIAN_SEED) -> RandomSample:
    """Median and best of ``problem.random_median_points`` uniform random configurations (fixed seed); the median
    is taken over the finite values (for a constrained problem: the feasible points' objectives)."""
    n = int(problem.random_median_points)
    configs = sample_configs(problem.search_space(), n, seed)
    values = evaluate_all(problem, configs)
    finite = np.where(np.isfinite(values), values, np.inf)
    if not np.isfinite(finite).any():
        raise ValueError(f"{problem.name}: none of {n:,} random points has a finite (feasible) value")
    best = int(np.argmin(finite))
    return RandomSample(float(np.median(finite[np.isfinite(finite)])), float(finite[best]), dict(configs[best]), n,
                        seed)


# --- reference search --------------------------------------------------------------------------------------------

class _Cube:
    """Unit-cube view of a search space: numeric parameters on their own (log) scale, categoricals as indices."""

    def __init__(self, space: Mapping[str, BaseDistribution]) -> None:
        self.space = dict(space)
        self.numeric = [n for n, d in self.space.items() if not isinstance(d, CategoricalDistribution)]
        self.categorical = [n for n, d in self.space.items() if isinstance(d, CategoricalDistribution)]

    def _bounds(self, dist: Any) -> tuple[float, float]:
        lo, hi = float(dist.low), float(dist.high)
        if isinstance(dist, IntDistribution):
            lo, hi = lo - 0.5, hi + 0.5
        return (math.log(lo), math.log(hi)) if dist.log else (lo, hi)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        out = np.empty(len(self.numeric))
        for i, name in enumerate(self.numeric):
            dist = self.space[name]
            lo, hi = self._bounds(dist)
            v = math.log(params[name]) if dist.log else float(params[name])
            out[i] = (v - lo) / (hi - lo)
        return np.clip(out, 0.0, 1.0)

    def decode(self, x: np.ndarray, cats: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for i, name in enumerate(self.numeric):
            dist = self.space[name]
            lo, hi = self._bounds(dist)
            v = lo + float(np.clip(x[i], 0.0, 1.0)) * (hi - lo)
            v = math.exp(v) if dist.log else v
            if isinstance(dist, IntDistribution):
                v = int(np.clip(dist.low + dist.step * round((v - dist.low) / dist.step), dist.low, dist.high))
            elif dist.step is not None:
                v = float(np.clip(dist.low + dist.step * round((v - dist.low) / dist.step), dist.low, dist.high))
            else:
                v = float(np.clip(v, dist.low, dist.high))
            params[name] = v
        params.update({name: cats[name] for name in self.categorical})
        return {name: params[name] for name in self.space}


@dataclass
class SearchResult:
    """Outcome of one reference search."""

    best_value: float
    best_params: dict[str, Any]
    evaluations: int
    method: str
    seconds: float
    history: list[float] = field(default_factory=list, repr=False)


def reference_search(problem: Any, evaluations: int, seed: int = 0,
                     start: Sequence[tuple[float, Mapping[str, Any]]] = ()) -> SearchResult:
    """Search ``problem`` for ``evaluations`` evaluations (see the module docstring); ``start`` holds known
    (value, params) pairs (e.g. the random sample's best) that seed the local search without being re-counted."""
    import optuna

    if kind_of(problem) == "constrained":
        problem = FeasibleObjective(problem)
    t0 = time.perf_counter()
    space = problem.search_space()
    rng = np.random.default_rng(seed)
    archive: list[tuple[float, dict[str, Any]]] = [(float(v), dict(p)) for v, p in start]

    n_tpe = min(REFERENCE_TPE_TRIALS, evaluations // 3)
    if n_tpe:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(multivariate=True, seed=seed))
        for _ in range(n_tpe):
            trial = study.ask(space)
            value = float(problem.evaluate(trial.params))
            study.tell(trial, value if math.isfinite(value) else None,
                       state=None if math.isfinite(value) else optuna.trial.TrialState.FAIL)
            archive.append((value, dict(trial.params)))

    cube = _Cube(space)
    remaining = evaluations - n_tpe
    restarts = 0
    while remaining > 0:
        ranked = sorted((a for a in archive if math.isfinite(a[0])), key=lambda a: a[0])
        # restart from the best point, then from lower-ranked ones, then from random points
        if restarts < min(len(ranked), 5):
            value, params = ranked[restarts]
        else:
            params = sample_configs(space, 1, int(rng.integers(2**31)))[0]
            value = float(problem.evaluate(params))
            archive.append((value, params))
            remaining -= 1
        restarts += 1
        x, cats, sigma = cube.encode(params), {c: params[c] for c in cube.categorical}, 0.2
        while remaining > 0 and sigma > 1e-4:
            y = x + sigma * rng.standard_normal(len(x)) if len(x) else x
            new_cats = dict(cats)
            for c in cube.categorical:
                if rng.random() < 1.0 / max(1, len(space)):
                    choices = space[c].choices  # type: ignore[attr-defined]
                    new_cats[c] = choices[int(rng.integers(len(choices)))]
            candidate = cube.decode(np.clip(y, 0.0, 1.0), new_cats)
            v = float(problem.evaluate(candidate))
            remaining -= 1
            archive.append((v, candidate))
            if math.isfinite(v) and v <= value:
                x, cats, value, sigma = cube.encode(candidate), new_cats, v, sigma * 1.5
            else:
                sigma *= 1.5 ** -0.25  # 1/5th success rule
    finite = [a for a in archive if math.isfinite(a[0])]
    best_value, best_params = min(finite, key=lambda a: a[0]) if finite else (math.inf, {})
    method = f"tpe{n_tpe}+es{evaluations - n_tpe}"
    return SearchResult(best_value, best_params, evaluations, method, time.perf_counter() - t0)


# --- store integration -------------------------------------------------------------------------------------------

def default_reference_evaluations(problem: Any) -> int:
    """Reference search length: 5,000 evaluations for cheap problems, half the random-median points otherwise."""
    return max(100, min(5000, int(problem.random_median_points) // 2))


def ensure_problem_constants(store: Any, problems: Sequence[Any]) -> None:
    """Store every problem's f_opt and random median, computing a random sample only where none is cached.

    Problems with a ``random_median`` attribute and a known optimum (BBOB) are stored exactly as before the
    registry existed. Multi-objective problems store their hypervolume reference (f_opt 0 and random median 1,
    so that their stored constants mean "hypervolume regret"). Others get the median and best of their random
    sample (feasible points only for constrained problems), computed once per store.
    """
    cached = store.problem_rows([p.name for p in problems])
    for p in problems:
        kind = kind_of(p)
        if kind == "multi":
            if cached.get(p.name, {}).get("reference") is None:
                store.put_problem(p.name, p.dim, 0.0, 1.0, family=p.family, exact=True, kind=kind,
                                  f_opt_source="hypervolume regret 0: the reference front",
                                  random_median_points=0, random_median_source="none (hypervolume regret)",
                                  reference=multi_objective_reference(p))
            continue
        known = p.known_optimum
        if known is not None and hasattr(p, "random_median"):
            store.put_problem(p.name, p.dim, float(known), float(p.random_median), family=p.family, exact=True,
                              f_opt_source="known optimum",
                              random_median_points=int(p.random_median_points),
                              random_median_source=f"median of {p.random_median_points:,} uniform random points "
                                                   f"(seed {RANDOM_MEDIAN_SEED})")
            continue
        row = cached.get(p.name)
        if row is not None and row.get("random_median_points") == int(p.random_median_points) \
                and row.get("kind") == kind:
            continue  # computed once per store
        sample = random_sample(p)
        exact = known is not None
        store.put_problem(p.name, p.dim, float(known) if exact else sample.best_value, sample.median,
                          family=p.family, exact=exact,
                          f_opt_source="known optimum" if exact else
                          f"best {'feasible value ' if kind == 'constrained' else ''}of the {sample.points:,} "
                          "random points of the random median",
                          random_median_points=sample.points,
                          random_median_source=f"median of {sample.points:,} uniform random points "
                                               f"(seed {sample.seed})" if kind == "single" else
                                               f"median of the final values of {sample.points:,} uniform random "
                                               f"points (seed {sample.seed})" if kind == "iterative" else
                                               f"median of the feasible ones of {sample.points:,} uniform random "
                                               f"points (seed {sample.seed})", kind=kind)


def multi_objective_reference(problem: Any) -> dict[str, object]:
    """What the report needs for a multi-objective problem's normalised hypervolume regret."""
    return {"objectives": list(problem.objective_names), "ideal": list(problem.ideal), "nadir": list(problem.nadir),
            "reference_point": list(problem.reference_point),
            "reference_hypervolume": float(problem.reference_hypervolume()), "source": problem.reference_source}


def run_reference_searches(problems: Sequence[Any], store_path: Any, evaluations: int | None = None,
                           seeds: Sequence[int] = (0,), progress: bool = True) -> dict[str, int]:
    """Run (or skip, if stored) a reference search per problem without a known optimum and seed; store results.

    Returns counts ``done``, ``skipped`` (already stored) and ``exact`` (problems with a known optimum).
    """
    import datetime as _dt

    from tqdm.auto import tqdm

    db = ResultStore(store_path)
    ensure_problem_constants(db, problems)
    have = db.reference_keys()
    counts = {"done": 0, "skipped": 0, "exact": 0}
    todo = []
    for p in problems:
        if p.known_optimum is not None or kind_of(p) == "multi":  # multi-objective: a reference front is known
            counts["exact"] += 1
            continue
        n = evaluations or default_reference_evaluations(p)
        for seed in seeds:
            if (p.name, seed, n) in have:
                counts["skipped"] += 1
            else:
                todo.append((p, seed, n))
    for p, seed, n in tqdm(todo, desc="reference searches", unit="problem", disable=not progress):
        # the best stored trial and, for cheap problems, the random sample's best point seed the local search
        start = [(float(r["value"]), json.loads(r["params_json"])) for r in db.rows(
            f"SELECT value, params_json FROM trials WHERE problem = ? AND params_json IS NOT NULL AND {FINAL} "
            "ORDER BY value LIMIT 1", (p.name,))]
        if p.random_median_points >= CHEAP_RANDOM_MEDIAN_POINTS:
            sample = random_sample(p)
            start.append((sample.best_value, sample.best_params))
        result = reference_search(p, n, seed=seed, start=start)
        db.put_reference(p.name, result.method, seed, n, result.best_value, result.best_params, result.seconds,
                         _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        counts["done"] += 1
    return counts
