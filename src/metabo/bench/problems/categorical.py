"""Many-valued categoricals (``categorical/f<fid>_d<dim>_c<choices>``): BBOB functions whose first coordinate is a
categorical parameter.

Each of the ``choices`` values (``c00``, ``c01``, ...) stands for one of as many evenly spaced levels of the first
coordinate over [-5, 5], in an order shuffled with a fixed seed: the choices have a structure that no optimiser is
told, as an architecture name, a data recipe or a pretrained backbone has. The other ``dim - 1`` coordinates stay
floats over [-5, 5]. BBOB instance 1; the optimum over the levels is not known exactly, so regret is measured
against the best value seen (``metabo.bench.reference``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from metabo.bench.problems.bbob import BBOB_BOUND, BBOBProblem
from metabo.bench.problems.base import CHEAP_RANDOM_MEDIAN_POINTS

FAMILY = "categorical"
FUNCTIONS = (1, 2, 6, 8, 10, 15, 17, 21)  # every BBOB group: separable, moderate, ill-conditioned, multimodal x2
DIM = 4
CHOICES = 50
SHUFFLE_SEED = 0
_NAME = re.compile(r"^categorical/f(\d{2})_d(\d+)_c(\d+)$")


@dataclass(frozen=True)
class CategoricalBBOB:
    """BBOB function ``fid`` in ``dim`` dimensions, its first coordinate a categorical of ``choices`` levels."""

    fid: int
    dim: int = DIM
    choices: int = CHOICES

    family = FAMILY
    known_optimum = None
    random_median_points = CHEAP_RANDOM_MEDIAN_POINTS

    def __post_init__(self) -> None:
        if self.dim < 2 or self.choices < 2:
            raise ValueError(f"need dim >= 2 and choices >= 2, got dim={self.dim}, choices={self.choices}")
        BBOBProblem(self.fid, 1, self.dim)  # checks the function id

    @property
    def name(self) -> str:
        return f"{FAMILY}/f{self.fid:02d}_d{self.dim}_c{self.choices}"

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (self.choices, self.dim, self.fid)

    def _levels(self) -> np.ndarray:
        """The first coordinate's value for each choice, in choice order (a fixed shuffle of an even grid)."""
        grid = np.linspace(-BBOB_BOUND, BBOB_BOUND, self.choices)
        return grid[np.random.RandomState(SHUFFLE_SEED + self.fid).permutation(self.choices)]

    def search_space(self) -> dict[str, BaseDistribution]:
        width = len(str(self.choices - 1))
        space: dict[str, BaseDistribution] = {
            "choice": CategoricalDistribution(tuple(f"c{i:0{width}d}" for i in range(self.choices)))}
        space.update({f"x{i}": FloatDistribution(-BBOB_BOUND, BBOB_BOUND) for i in range(1, self.dim)})
        return space

    def evaluate(self, params: Mapping[str, Any]) -> float:
        level = self._levels()[int(str(params["choice"])[1:])]
        x = np.array([level, *(float(params[f"x{i}"]) for i in range(1, self.dim))])
        return BBOBProblem(self.fid, 1, self.dim).evaluate_array(x)


def problems() -> list[CategoricalBBOB]:
    """Eight BBOB functions (every group) in 4 dimensions with a 50-choice categorical."""
    return [CategoricalBBOB(fid) for fid in FUNCTIONS]


def get_problem(name: str) -> CategoricalBBOB:
    match = _NAME.match(name)
    if match is None:
        raise KeyError(f"unknown problem name {name!r}; expected e.g. 'categorical/f01_d4_c50'")
    try:
        return CategoricalBBOB(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as exc:
        raise KeyError(str(exc)) from exc
