"""A real multi-objective problem: XGBoost's error against its training time (``mo/rbv2_xgboost_<instance>``).

YAHPO Gym's ``rbv2_xgboost`` surrogate (``metabo.meta.yahpo``) at full fidelity on one *validation* instance
(OpenML task 31, credit-g, by default; ``train`` and ``reserved`` instances are refused) gives both objectives of one
configuration in one deterministic call: ``1 - acc`` and ``log10`` of the predicted training time in seconds
(the log spreads the front's times, from under a second to about twenty minutes, evenly, so the trade-off is
not decided by the few slowest configurations).

The reference front is recomputed deterministically (and cached per process) by ``reference_front``:
``REFERENCE_RANDOM`` uniform random configurations (seed ``REFERENCE_SEED``), Pareto-filtered, then
``REFERENCE_ROUNDS`` rounds of ``REFERENCE_BATCH`` Gaussian perturbations (unit-cube step ``REFERENCE_STEP``,
categoricals resampled with probability 0.1) of random front points, each round's union filtered again; about
ten seconds. Its ideal and nadir normalise the objectives; a run can still find points beyond it, so its
hypervolume regret is clipped at 0 like the others.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from optuna.distributions import BaseDistribution

from metabo.bench.hypervolume import hypervolume, normalise_objectives, pareto_mask
from metabo.bench.problems.base import Outcome
from metabo.meta import yahpo

SCENARIO = "rbv2_xgboost"
KEY_PREFIX = f"{SCENARIO}_"
DEFAULT_INSTANCE = "31"
REFERENCE_POINT = 1.1
REFERENCE_SEED = 20240101
REFERENCE_RANDOM = 100_000
REFERENCE_ROUNDS = 10
REFERENCE_BATCH = 10_000
REFERENCE_STEP = 0.05
_TIME_COLUMN = "timetrain"


def available() -> bool:
    """Whether the YAHPO data and onnxruntime are present."""
    return yahpo.unavailable_reason(SCENARIO) is None


@dataclass(frozen=True)
class XgboostErrorTimeProblem:
    """Minimise ``(1 - accuracy, log10 training seconds)`` of XGBoost on a YAHPO validation instance."""

    instance: str = DEFAULT_INSTANCE
    n_objectives: int = 2
    objective_names: tuple[str, ...] = ("error", "log10_timetrain")
    known_optimum: float | None = None
    random_median_points: int = 0

    @property
    def name(self) -> str:
        return f"mo/{KEY_PREFIX}{self.instance}"

    @property
    def family(self) -> str:
        return "mo"

    @property
    def split(self) -> str:
        return yahpo.split_of(SCENARIO, self.instance)

    @property
    def _surrogate(self) -> yahpo.YahpoSurrogate:
        return yahpo.YahpoSurrogate(SCENARIO, self.instance)

    @property
    def dim(self) -> int:
        return len(self.search_space())

    def search_space(self) -> dict[str, BaseDistribution]:
        """The scenario's flat space (``metabo.meta.yahpo``)."""
        return self._surrogate.search_space()

    def objectives_many(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(n, 2) objective rows of many configurations in one surrogate call."""
        spec = yahpo.SCENARIOS[SCENARIO]
        model = yahpo.surrogate(SCENARIO, yahpo.data_dir())
        out = model.predict([self._surrogate.full_config(c) for c in configs]).astype(np.float64)
        error = 1.0 - out[:, spec.y_names.index("acc")]
        seconds = np.maximum(out[:, spec.y_names.index(_TIME_COLUMN)], 1e-3)  # the surrogate can dip below 0
        return np.column_stack([error, np.log10(seconds)])

    def evaluate_outcome(self, params: Mapping[str, Any]) -> Outcome:
        """Both objectives at ``params`` (inactive conditional parameters are ignored)."""
        row = self.objectives_many([params])[0]
        if not np.all(np.isfinite(row)):
            raise FloatingPointError(f"{self.name}: the surrogate returned a non-finite value")
        return Outcome((float(row[0]), float(row[1])))

    def reference_front(self) -> np.ndarray:
        """The reference front's objective rows (see the module docstring)."""
        return _reference_front(self.instance, str(yahpo.data_dir()))

    @property
    def ideal(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.reference_front().min(0))

    @property
    def nadir(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.reference_front().max(0))

    @property
    def reference_point(self) -> tuple[float, ...]:
        return (REFERENCE_POINT,) * self.n_objectives

    @property
    def reference_source(self) -> str:
        return (f"Pareto filter of {REFERENCE_RANDOM:,} uniform random configurations (seed {REFERENCE_SEED}) "
                f"refined by {REFERENCE_ROUNDS} x {REFERENCE_BATCH:,} local perturbations "
                f"({len(self.reference_front())} points; metabo.bench.problems.mo_yahpo)")

    def reference_hypervolume(self) -> float:
        """The reference front's hypervolume in normalised units up to ``reference_point``."""
        return hypervolume(normalise_objectives(self.reference_front(), self.ideal, self.nadir),
                           self.reference_point)


@functools.lru_cache(maxsize=None)
def _reference_front(instance: str, folder: str) -> np.ndarray:
    from metabo.bench.reference import _Cube, sample_configs

    problem = XgboostErrorTimeProblem(instance)
    space = problem.search_space()
    rng = np.random.default_rng(REFERENCE_SEED)
    configs = sample_configs(space, REFERENCE_RANDOM, REFERENCE_SEED)
    values = np.concatenate([problem.objectives_many(configs[i:i + REFERENCE_BATCH])
                             for i in range(0, len(configs), REFERENCE_BATCH)])
    keep = pareto_mask(values)
    configs, values = [c for c, k in zip(configs, keep) if k], values[keep]
    cube = _Cube(space)
    for _ in range(REFERENCE_ROUNDS):
        candidates = []
        for parent in rng.integers(len(configs), size=REFERENCE_BATCH):
            base = configs[parent]
            x = cube.encode(base) + REFERENCE_STEP * rng.standard_normal(len(cube.numeric))
            cats = {c: (space[c].choices[int(rng.integers(len(space[c].choices)))]  # type: ignore[attr-defined]
                        if rng.random() < 0.1 else base[c]) for c in cube.categorical}
            candidates.append(cube.decode(x, cats))
        configs = configs + candidates
        values = np.concatenate([values, problem.objectives_many(candidates)])
        keep = pareto_mask(values)
        configs, values = [c for c, k in zip(configs, keep) if k], values[keep]
    return values[np.argsort(values[:, 0], kind="stable")]


def parse_name(name: str) -> XgboostErrorTimeProblem:
    """``mo/rbv2_xgboost_<instance>`` for a *validation* instance of the scenario."""
    instance = name.removeprefix(f"mo/{KEY_PREFIX}")
    split = yahpo.check_instance(SCENARIO, instance)  # KeyError / PermissionError (reserved) as for yahpo/...
    if split != "validation":
        raise PermissionError(f"{name}: only validation instances of {SCENARIO} are benchmark problems "
                              f"({instance} is a {split!r} instance)")
    return XgboostErrorTimeProblem(instance)

