"""Wide spaces with few parameters that matter (``sparse/f<fid>_d<active>_in<total>``).

A BBOB function (instance 1) of ``active`` dimensions embedded among ``total`` float parameters over [-5, 5]:
the function reads ``active`` of them (chosen and ordered with a fixed seed), the rest are ignored, as in
tuning problems where a few of many settings decide the result (Bergstra and Bengio, 2012). The optimum is the
BBOB function's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from optuna.distributions import FloatDistribution

from metabo.bench.problems.base import CHEAP_RANDOM_MEDIAN_POINTS
from metabo.bench.problems.bbob import BBOB_BOUND, BBOBProblem

FAMILY = "sparse"
FUNCTIONS = (1, 2, 3, 6, 8, 10, 11, 13, 15, 17, 20, 21)  # as benchmarks/wide.sh: all five BBOB groups
ACTIVE = 8
TOTALS = (40, 100)
LAYOUT_SEED = 0
_NAME = re.compile(r"^sparse/f(\d{2})_d(\d+)_in(\d+)$")


@dataclass(frozen=True)
class SparseBBOB:
    """BBOB function ``fid`` in ``active`` dimensions among ``total`` parameters."""

    fid: int
    active: int = ACTIVE
    total: int = 40

    family = FAMILY
    random_median_points = CHEAP_RANDOM_MEDIAN_POINTS

    def __post_init__(self) -> None:
        if not 1 <= self.active <= self.total:
            raise ValueError(f"need 1 <= active <= total, got active={self.active}, total={self.total}")
        BBOBProblem(self.fid, 1, self.active)  # checks the function id

    @property
    def name(self) -> str:
        return f"{FAMILY}/f{self.fid:02d}_d{self.active}_in{self.total}"

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (self.total, self.active, self.fid)

    @property
    def dim(self) -> int:
        return self.total

    @property
    def known_optimum(self) -> float:
        return BBOBProblem(self.fid, 1, self.active).f_opt

    def _read(self) -> list[str]:
        """The parameters the function reads, in its argument order."""
        order = np.random.RandomState(LAYOUT_SEED + self.fid).permutation(self.total)[: self.active]
        return [f"x{i:03d}" for i in order]

    def search_space(self) -> dict[str, FloatDistribution]:
        return {f"x{i:03d}": FloatDistribution(-BBOB_BOUND, BBOB_BOUND) for i in range(self.total)}

    def evaluate(self, params: Mapping[str, Any]) -> float:
        x = np.array([float(params[name]) for name in self._read()])
        return BBOBProblem(self.fid, 1, self.active).evaluate_array(x)


def problems() -> list[SparseBBOB]:
    """Twelve BBOB functions (every group), 8 active dimensions among 40 and among 100 parameters."""
    return [SparseBBOB(fid, ACTIVE, total) for total in TOTALS for fid in FUNCTIONS]


def get_problem(name: str) -> SparseBBOB:
    match = _NAME.match(name)
    if match is None:
        raise KeyError(f"unknown problem name {name!r}; expected e.g. 'sparse/f01_d8_in40'")
    try:
        return SparseBBOB(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as exc:
        raise KeyError(str(exc)) from exc
