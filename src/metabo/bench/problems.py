"""Benchmark problems: a registry of named, minimised black-box functions with reference values.

Every problem exposes an Optuna search space, ``evaluate(params) -> float`` (to be minimised), a reference
optimum ``f_opt`` and ``random_median``: the median of f over 10,000 uniform random points drawn with a fixed
seed (``RANDOM_MEDIAN_SEED``), the same for every problem. These give the normalised regret

    regret = max(0, (best_so_far - f_opt) / (random_median - f_opt))

so 0 means the optimum was found and 1 means "as good as a typical random point". For BBOB ``f_opt`` is the
exact optimum, so the clip at 0 only removes floating-point noise; it matters only for problems whose
reference optimum is an estimate.

Problem names look like ``bbob/f01_i1_d2`` (BBOB function 1, instance 1, dimension 2). ``select_problems``
matches glob patterns against the registry (BBOB functions 1-24 at the dimensions and instances asked for);
``get_problem`` parses any well-formed name directly.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from optuna.distributions import FloatDistribution

RANDOM_MEDIAN_SEED = 20240101
RANDOM_MEDIAN_POINTS = 10_000
BBOB_FUNCTIONS = tuple(range(1, 25))
BBOB_DEFAULT_DIMS = (2, 3, 5, 10, 20, 40)
BBOB_BOUND = 5.0
_BBOB_NAME = re.compile(r"^bbob/f(\d{2})_i(\d+)_d(\d+)$")


@dataclass(frozen=True)
class Problem:
    """A BBOB problem, built lazily from (function id, instance, dimension) so it pickles cheaply.

    Attributes:
        fid: BBOB function id, 1..24.
        instance: BBOB instance (shifts/rotations of the function).
        dim: number of parameters.
    """

    fid: int
    instance: int
    dim: int

    def __post_init__(self) -> None:
        if self.fid not in BBOB_FUNCTIONS:
            raise ValueError(f"BBOB function id must be in 1..24, got {self.fid}")
        if self.dim < 1 or self.instance < 1:
            raise ValueError(f"dimension and instance must be positive, got d={self.dim}, i={self.instance}")

    @property
    def name(self) -> str:
        return f"bbob/f{self.fid:02d}_i{self.instance}_d{self.dim}"

    @property
    def function_name(self) -> str:
        """The BBOB function's own name, e.g. ``Sphere``."""
        return str(_ioh_problem(self.fid, self.instance, self.dim).meta_data.name)

    @property
    def param_names(self) -> list[str]:
        width = len(str(self.dim - 1))
        return [f"x{i:0{width}d}" for i in range(self.dim)]

    def search_space(self) -> dict[str, FloatDistribution]:
        """Parameter name -> ``FloatDistribution(-5, 5)``."""
        return {n: FloatDistribution(-BBOB_BOUND, BBOB_BOUND) for n in self.param_names}

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Objective value (minimise) at a parameter dict holding every parameter of the search space."""
        x = np.array([float(params[n]) for n in self.param_names], dtype=np.float64)
        return self.evaluate_array(x)

    def evaluate_array(self, x: np.ndarray) -> float:
        """Objective value at one point given as an array of length ``dim``."""
        return float(_ioh_problem(self.fid, self.instance, self.dim)(np.asarray(x, dtype=np.float64)))

    @property
    def f_opt(self) -> float:
        """Exact optimum value of this BBOB instance."""
        return float(_ioh_problem(self.fid, self.instance, self.dim).optimum.y)

    @property
    def random_median(self) -> float:
        """Median of f over 10,000 uniform random points of the search space (fixed seed)."""
        return _random_median(self.fid, self.instance, self.dim)


@functools.lru_cache(maxsize=None)
def _ioh_problem(fid: int, instance: int, dim: int) -> Any:
    try:
        import ioh
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("BBOB problems need the 'ioh' package: pip install 'metabo[bench]'") from exc
    return ioh.get_problem(fid, instance, dim, ioh.ProblemClass.REAL)


@functools.lru_cache(maxsize=None)
def _random_median(fid: int, instance: int, dim: int) -> float:
    rng = np.random.default_rng(RANDOM_MEDIAN_SEED)
    x = rng.uniform(-BBOB_BOUND, BBOB_BOUND, size=(RANDOM_MEDIAN_POINTS, dim))
    values = np.asarray(_ioh_problem(fid, instance, dim)(x), dtype=np.float64)
    return float(np.median(values))


def normalised_regret(best_so_far: np.ndarray | float, f_opt: float, random_median: float) -> np.ndarray:
    """``max(0, (best - f_opt) / (random_median - f_opt))``, elementwise (see the module docstring)."""
    denom = random_median - f_opt
    if not denom > 0:
        raise ValueError(f"random_median ({random_median}) must exceed f_opt ({f_opt}) to normalise")
    return np.maximum((np.asarray(best_so_far, dtype=np.float64) - f_opt) / denom, 0.0)


def get_problem(name: str) -> Problem:
    """The problem called ``name`` (e.g. ``bbob/f07_i3_d5``)."""
    match = _BBOB_NAME.match(name)
    if match is None:
        raise KeyError(f"unknown problem name {name!r}; expected e.g. 'bbob/f01_i1_d2'")
    fid, instance, dim = (int(g) for g in match.groups())
    return Problem(fid, instance, dim)


def registry(dims: Iterable[int] = BBOB_DEFAULT_DIMS, instances: Iterable[int] = (1,)) -> list[Problem]:
    """All 24 BBOB functions at the given dimensions and instances."""
    return [Problem(f, i, d) for d in dims for i in instances for f in BBOB_FUNCTIONS]


def select_problems(patterns: str | Sequence[str], dims: Iterable[int] | None = None,
                    instances: Iterable[int] = (1,)) -> list[Problem]:
    """Problems whose names match any of the glob patterns (a list, or one comma-separated string).

    A pattern without glob characters is parsed as a name, so any instance or dimension can be named
    directly. Patterns with globs are matched against ``registry(dims, instances)``; ``dims`` defaults to the
    dimensions the patterns mention (``_d<k>`` suffixes) or else the standard BBOB ones.
    Raises ``ValueError`` when nothing matches.
    """
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",") if p.strip()]
    if dims is None:
        mentioned = {int(m) for p in patterns for m in re.findall(r"_d(\d+)", p)}
        dims = sorted(mentioned | set(BBOB_DEFAULT_DIMS))
    pool = registry(dims, instances)
    chosen: dict[str, Problem] = {}
    for pattern in patterns:
        if not any(c in pattern for c in "*?["):
            problem = get_problem(pattern)
            chosen[problem.name] = problem
            continue
        for problem in pool:
            if fnmatch.fnmatchcase(problem.name, pattern):
                chosen[problem.name] = problem
    if not chosen:
        raise ValueError(f"no problem matches {list(patterns)!r} (names look like 'bbob/f01_i1_d2')")
    return sorted(chosen.values(), key=lambda p: (p.dim, p.instance, p.fid))
