"""Solver tuning: HiGHS MIP options on streams of generated MIP instances (``highs/<generator>/<instance>``).

Each problem tunes ten HiGHS MIP options (``SEARCH_SPACE``; each distribution matches the option's HiGHS type:
double -> float, integer -> int, bool -> categorical of ``False``/``True``, string -> categorical of strings) on
one instance of a seeded generator. The instances of a generator form a *stream of related instances*:
instance ``k`` is drawn from the same distribution with the seed ``(GENERATOR_SEED, generator index, k)``, so
instance ids 0, 1, 2, ... are different but alike, the setting of tuning a solver for a recurring workload.

Generators (sizes chosen so HiGHS's defaults solve an instance in roughly 0.05-1 s on one core):

- ``setcover``: unicost set cover (Balas & Ho style random matrix), 80 rows x 160 columns, density 6 %.
- ``knapsack``: multi-dimensional 0/1 knapsack after Chu & Beasley, 35 items x 5 constraints, tightness 0.5,
  profits correlated with the weights.
- ``facility``: capacitated facility location after Cornuejols et al., 40 customers x 20 facilities,
  capacity ratio 3, continuous assignments and binary openings (with the strong ``x_ij <= y_j`` rows).

Cost (minimised; deterministic, never wall time). HiGHS runs with ``threads=1`` and ``random_seed=0``, so the
search it performs is a function of the instance and options alone. Its work is

    work = simplex iterations + NODE_WEIGHT * branch-and-bound nodes

and the cost is ``log10(1 + work)``. A run is capped at ``NODE_LIMIT`` nodes. A run that stops before proving
optimality (node limit, or the ``SAFETY_TIME_LIMIT`` wall-clock net, which only pathological settings reach)
pays a PAR10-style penalty plus the gap it left:

    cost = log10(1 + work) + 1 + min(relative gap, 1)        (gap 1 when no feasible solution was found)

so an unsolved run always costs more than ten times its work. ``known_optimum`` is ``None``: the least work
possible is unknown. Only a run that hits the safety time limit can be non-deterministic.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

FAMILY = "highs"
GENERATOR_SEED = 20240607
N_INSTANCES = 10  # default stream: instance ids 0..N_INSTANCES-1 of every generator
NODE_LIMIT = 1000
NODE_WEIGHT = 10.0  # a node costs about as much as ten simplex iterations (bookkeeping, propagation, heuristics)
SAFETY_TIME_LIMIT = 30.0  # seconds; far above a normal run, only so a pathological setting cannot hang a worker
HIGHS_RANDOM_SEED = 0
RANDOM_MEDIAN_POINTS = 500

SEARCH_SPACE: dict[str, BaseDistribution] = {
    "presolve": CategoricalDistribution(("off", "on")),
    "mip_heuristic_effort": FloatDistribution(1e-3, 1.0, log=True),
    "mip_detect_symmetry": CategoricalDistribution((False, True)),
    "mip_allow_restart": CategoricalDistribution((False, True)),
    "mip_allow_cut_separation_at_nodes": CategoricalDistribution((False, True)),
    "mip_heuristic_run_feasibility_jump": CategoricalDistribution((False, True)),
    "mip_lp_age_limit": IntDistribution(1, 100, log=True),
    "mip_pool_age_limit": IntDistribution(1, 300, log=True),
    "mip_pool_soft_limit": IntDistribution(10, 100_000, log=True),
    "mip_pscost_minreliable": IntDistribution(0, 20),
}


@dataclass(frozen=True)
class MipInstance:
    """A MIP ``min c^T x  s.t.  row_lower <= A x <= row_upper, col_lower <= x <= col_upper`` (A column-wise)."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    start: np.ndarray  # CSC column starts, length n + 1
    index: np.ndarray  # CSC row indices
    value: np.ndarray  # CSC values
    integer: np.ndarray  # bool per column

    @classmethod
    def from_dense(cls, cost: np.ndarray, matrix: np.ndarray, row_lower: np.ndarray, row_upper: np.ndarray,
                   col_upper: np.ndarray, integer: np.ndarray) -> "MipInstance":
        """Build from a dense constraint matrix; columns have lower bound 0."""
        from scipy.sparse import csc_matrix

        a = csc_matrix(matrix)
        a.sort_indices()
        return cls(np.asarray(cost, np.float64), np.zeros(len(cost)), np.asarray(col_upper, np.float64),
                   np.asarray(row_lower, np.float64), np.asarray(row_upper, np.float64),
                   a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data.astype(np.float64),
                   np.asarray(integer, bool))


def _set_cover(rng: np.random.Generator) -> MipInstance:
    n_rows, n_cols, density = 80, 160, 0.06
    a = (rng.random((n_rows, n_cols)) < density).astype(np.float64)
    for i in range(n_rows):  # every element coverable by at least two sets, so the instance is feasible
        while a[i].sum() < 2:
            a[i, rng.integers(n_cols)] = 1.0
    cost = np.ones(n_cols)  # unit costs: many equivalent covers, so branching and cuts matter
    return MipInstance.from_dense(cost, a, np.ones(n_rows), np.full(n_rows, np.inf), np.ones(n_cols),
                                  np.ones(n_cols, bool))


def _knapsack(rng: np.random.Generator) -> MipInstance:
    n_items, n_dims, tightness = 35, 5, 0.5
    w = rng.integers(0, 1001, (n_dims, n_items)).astype(np.float64)
    profit = np.round(w.sum(axis=0) / n_dims + 500.0 * rng.random(n_items))
    return MipInstance.from_dense(-profit, w, np.full(n_dims, -np.inf), tightness * w.sum(axis=1),
                                  np.ones(n_items), np.ones(n_items, bool))


def _facility(rng: np.random.Generator) -> MipInstance:
    n_cust, n_fac, ratio = 40, 20, 3.0
    cust, fac = rng.random((n_cust, 2)), rng.random((n_fac, 2))
    demand = rng.integers(5, 36, n_cust).astype(np.float64)
    capacity = rng.integers(10, 161, n_fac).astype(np.float64)
    fixed = rng.integers(0, 91, n_fac) + rng.integers(100, 111, n_fac) * np.sqrt(capacity)
    capacity *= ratio * demand.sum() / capacity.sum()
    dist = np.linalg.norm(cust[:, None, :] - fac[None, :, :], axis=2)
    n_x = n_cust * n_fac  # columns: x[i, j] (share of customer i served by j) row-major, then y[j] (open j)
    a = np.zeros((n_cust + n_fac + n_x + 1, n_x + n_fac))
    x_col = np.arange(n_x).reshape(n_cust, n_fac)
    for i in range(n_cust):  # each customer fully served
        a[i, x_col[i]] = 1.0
    for j in range(n_fac):  # capacity of facility j, only if open
        a[n_cust + j, x_col[:, j]] = demand
        a[n_cust + j, n_x + j] = -capacity[j]
    rows = n_cust + n_fac + np.arange(n_x)  # x[i, j] <= y[j]
    a[rows, np.arange(n_x)] = 1.0
    a[rows, n_x + np.repeat(np.arange(n_fac)[None], n_cust, 0).ravel()] = -1.0
    a[-1, n_x:] = capacity  # enough capacity open overall (redundant, but a classic strengthening)
    n_rows = a.shape[0]
    lower = np.concatenate([np.ones(n_cust), np.full(n_fac + n_x, -np.inf), [demand.sum()]])
    upper = np.concatenate([np.ones(n_cust), np.zeros(n_fac + n_x), [np.inf]])
    assert len(lower) == n_rows
    cost = np.concatenate([(10.0 * dist * demand[:, None]).ravel(), fixed])
    integer = np.concatenate([np.zeros(n_x, bool), np.ones(n_fac, bool)])
    return MipInstance.from_dense(cost, a, lower, upper, np.ones(n_x + n_fac), integer)


GENERATORS: dict[str, Callable[[np.random.Generator], MipInstance]] = {
    "setcover": _set_cover,
    "knapsack": _knapsack,
    "facility": _facility,
}


@functools.lru_cache(maxsize=64)
def generate(generator: str, instance: int) -> MipInstance:
    """Instance ``instance`` of the stream of ``generator`` (deterministic, cached per process)."""
    gen_index = list(GENERATORS).index(generator)
    return GENERATORS[generator](np.random.default_rng([GENERATOR_SEED, gen_index, instance]))


@dataclass(frozen=True)
class SolveResult:
    """What one HiGHS run reports that the cost needs."""

    optimal: bool
    nodes: int
    simplex_iterations: int
    gap: float  # relative MIP gap; inf without a feasible solution
    objective: float


def solve(inst: MipInstance, options: Mapping[str, Any]) -> SolveResult:
    """Run HiGHS on ``inst`` with the fixed settings (one thread, fixed seed, limits) and ``options`` on top."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    fixed = {"threads": 1, "random_seed": HIGHS_RANDOM_SEED, "mip_max_nodes": NODE_LIMIT,
             "time_limit": SAFETY_TIME_LIMIT}
    for key, value in {**fixed, **options}.items():
        if h.setOptionValue(key, value) != highspy.HighsStatus.kOk:
            raise ValueError(f"HiGHS rejected option {key}={value!r}")
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(inst.cost), len(inst.row_lower)
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = inst.cost, inst.col_lower, inst.col_upper
    lp.row_lower_, lp.row_upper_ = inst.row_lower, inst.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = inst.start, inst.index, inst.value
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                       for i in inst.integer]
    h.passModel(lp)
    h.run()
    info = h.getInfo()
    status = h.getModelStatus()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    gap = float(info.mip_gap) if has_solution else math.inf
    return SolveResult(status == highspy.HighsModelStatus.kOptimal, int(info.mip_node_count),
                       int(info.simplex_iteration_count), gap, float(info.objective_function_value))


def cost_of(result: SolveResult) -> float:
    """The minimised cost of one run (see the module docstring)."""
    cost = math.log10(1.0 + result.simplex_iterations + NODE_WEIGHT * result.nodes)
    if not result.optimal:
        cost += 1.0 + min(result.gap, 1.0)
    return cost


@dataclass(frozen=True)
class HighsProblem:
    """Tune HiGHS MIP options on instance ``instance`` of ``generator``'s stream (cheap to build and pickle)."""

    generator: str
    instance: int
    known_optimum: float | None = None
    random_median_points: int = RANDOM_MEDIAN_POINTS

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ValueError(f"unknown MIP generator {self.generator!r}; known: {sorted(GENERATORS)}")
        if self.instance < 0:
            raise ValueError(f"instance ids are non-negative, got {self.instance}")

    @property
    def name(self) -> str:
        return f"{FAMILY}/{self.generator}/{self.instance}"

    @property
    def family(self) -> str:
        return FAMILY

    @property
    def dim(self) -> int:
        return len(SEARCH_SPACE)

    def search_space(self) -> dict[str, BaseDistribution]:
        """HiGHS option name -> distribution (a fresh dict)."""
        return dict(SEARCH_SPACE)

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Cost of solving the instance with these options (minimise; deterministic)."""
        options = {k: _highs_value(SEARCH_SPACE[k], params[k]) for k in SEARCH_SPACE}
        return cost_of(solve(generate(self.generator, self.instance), options))


def _highs_value(dist: BaseDistribution, value: Any) -> Any:
    # HiGHS's setter dispatches on the Python type: numpy scalars or floats for int options are refused.
    if isinstance(dist, IntDistribution):
        return int(value)
    if isinstance(dist, FloatDistribution):
        return float(value)
    return value.item() if isinstance(value, np.generic) else value


def problems(instances: range | None = None) -> list[HighsProblem]:
    """Every default HiGHS problem: instances ``0..N_INSTANCES-1`` of each generator."""
    ids = range(N_INSTANCES) if instances is None else instances
    return [HighsProblem(g, i) for g in GENERATORS for i in ids]


def get_problem(name: str) -> HighsProblem:
    """The problem called ``name`` (``highs/<generator>/<instance>``); any instance id of the stream is valid."""
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != FAMILY or not parts[2].isdigit():
        raise KeyError(f"unknown problem name {name!r}; expected e.g. 'highs/setcover/0'")
    try:
        return HighsProblem(parts[1], int(parts[2]))
    except ValueError as exc:
        raise KeyError(str(exc)) from exc


def available() -> bool:
    """Whether ``highspy`` is installed (the module itself imports without it)."""
    import importlib.util

    return importlib.util.find_spec("highspy") is not None
