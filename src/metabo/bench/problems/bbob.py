"""BBOB problems (the 24 noiseless functions of COCO, through ``ioh``) on ``[-5, 5]^dim``.

Names look like ``bbob/f01_i1_d2`` (function 1, instance 1, dimension 2). The optimum is known exactly, and the
random median is the median of f over 10,000 uniform points drawn with a fixed seed (``RANDOM_MEDIAN_SEED``), the
same for every problem. ``ioh`` (the ``bench`` extra) is imported only when a problem is evaluated.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
from optuna.distributions import FloatDistribution

from metabo.bench.problems.base import CHEAP_RANDOM_MEDIAN_POINTS

FAMILY = "bbob"
RANDOM_MEDIAN_SEED = 20240101
RANDOM_MEDIAN_POINTS = CHEAP_RANDOM_MEDIAN_POINTS
BBOB_FUNCTIONS = tuple(range(1, 25))
BBOB_DEFAULT_DIMS = (2, 3, 5, 10, 20, 40)
BBOB_BOUND = 5.0
_BBOB_NAME = re.compile(r"^bbob/f(\d{2})_i(\d+)_d(\d+)$")


@dataclass(frozen=True)
class BBOBProblem:
    """A BBOB problem, built lazily from (function id, instance, dimension) so it pickles cheaply.

    Attributes:
        fid: BBOB function id, 1..24.
        instance: BBOB instance (shifts/rotations of the function).
        dim: number of parameters.
    """

    fid: int
    instance: int
    dim: int

    family = FAMILY
    random_median_points = RANDOM_MEDIAN_POINTS

    def __post_init__(self) -> None:
        if self.fid not in BBOB_FUNCTIONS:
            raise ValueError(f"BBOB function id must be in 1..24, got {self.fid}")
        if self.dim < 1 or self.instance < 1:
            raise ValueError(f"dimension and instance must be positive, got d={self.dim}, i={self.instance}")

    @property
    def name(self) -> str:
        return f"bbob/f{self.fid:02d}_i{self.instance}_d{self.dim}"

    @property
    def sort_key(self) -> tuple[int, int, int]:
        """Order within the family: dimension, instance, function."""
        return (self.dim, self.instance, self.fid)

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
    def known_optimum(self) -> float:
        """Same as ``f_opt``: BBOB optima are known exactly."""
        return self.f_opt

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
    # kept exactly as before the registry existed, so stored BBOB regrets do not move
    rng = np.random.default_rng(RANDOM_MEDIAN_SEED)
    x = rng.uniform(-BBOB_BOUND, BBOB_BOUND, size=(RANDOM_MEDIAN_POINTS, dim))
    values = np.asarray(_ioh_problem(fid, instance, dim)(x), dtype=np.float64)
    return float(np.median(values))


def parse_name(name: str) -> BBOBProblem:
    """The problem called ``name`` (e.g. ``bbob/f07_i3_d5``); any instance and dimension can be named."""
    match = _BBOB_NAME.match(name)
    if match is None:
        raise KeyError(f"unknown BBOB problem name {name!r}; expected e.g. 'bbob/f01_i1_d2'")
    fid, instance, dim = (int(g) for g in match.groups())
    return BBOBProblem(fid, instance, dim)


def problems(dims: Iterable[int] = BBOB_DEFAULT_DIMS, instances: Iterable[int] = (1,)) -> list[BBOBProblem]:
    """All 24 BBOB functions at the given dimensions and instances."""
    instances = list(instances)
    return [BBOBProblem(f, i, d) for d in dims for i in instances for f in BBOB_FUNCTIONS]


def dims_for(patterns: Iterable[str]) -> list[int]:
    """The standard BBOB dimensions plus any a pattern mentions with a ``_d<k>`` suffix."""
    mentioned = {int(m) for p in patterns for m in re.findall(r"_d(\d+)", p)}
    return sorted(mentioned | set(BBOB_DEFAULT_DIMS))
