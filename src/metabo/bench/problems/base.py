"""The problem contract every benchmark family implements, and the normalised regret.

A problem is a named, deterministic black-box function to be minimised over an Optuna search space. The
contract is structural (``typing.Protocol``): family modules need not import this one, they only provide the
attributes below. Normalised regret compares a best-so-far value with two reference values of the problem:

    regret = max(0, (best_so_far - f_opt) / (random_median - f_opt))

0 means the reference optimum was reached, 1 means "as good as a typical random point". ``f_opt`` is the exact
optimum where one is known (BBOB) and otherwise the best value ever seen for the problem (see
``metabo.bench.reference``), which is why values are clipped at 0.

Two more kinds extend the contract (``kind_of`` tells them apart):

* a *constrained* problem also has ``constraint_names`` and ``evaluate_outcome(params) -> Outcome`` whose
  ``constraints`` hold one value per name, feasible when ``<= 0`` (Optuna's ``trial.set_constraint``
  convention); ``evaluate`` is still its objective, feasible or not, and ``known_optimum`` the best *feasible*
  value;
* a *multi-objective* problem has ``n_objectives >= 2`` and ``evaluate_outcome`` instead of a scalar
  ``evaluate``, plus what its normalised hypervolume regret needs (``MultiObjectiveProblem``);
* an *iterative* problem has a learning curve (``steps``, ``max_step``, ``curve``; ``iterative.py``) that a
  trial reports step by step so that a pruner can stop it; ``evaluate`` is the curve's last value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np
from optuna.distributions import BaseDistribution

from metabo.bench.problems.iterative import is_iterative

CHEAP_RANDOM_MEDIAN_POINTS = 10_000  # random points for the random median of a cheap problem


@runtime_checkable
class Problem(Protocol):
    """A minimised, deterministic benchmark problem.

    Attributes:
        name: unique name ``"<family>/..."``, e.g. ``bbob/f01_i1_d2`` or ``yahpo/lcbench/7593``.
        family: the name's first component, e.g. ``bbob``.
        dim: number of parameters of the search space.
        known_optimum: the exact optimum value, or ``None`` when it is unknown (then a reference is estimated).
        random_median_points: how many random configurations the random median uses (10,000 for cheap
            problems, fewer for costly ones).
    """

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def known_optimum(self) -> float | None: ...

    @property
    def random_median_points(self) -> int: ...

    def search_space(self) -> dict[str, BaseDistribution]:
        """Parameter name -> Optuna distribution (a fixed, flat space)."""
        ...

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Objective value (minimise) at a dict holding every parameter of the search space."""
        ...


@dataclass(frozen=True)
class Outcome:
    """One evaluation: objective values (minimised, one per objective) and constraint values (<= 0: feasible)."""

    values: tuple[float, ...]
    constraints: tuple[float, ...] = ()

    @property
    def feasible(self) -> bool:
        return all(c <= 0.0 for c in self.constraints)


@runtime_checkable
class MultiObjectiveProblem(Protocol):
    """What a multi-objective problem adds to the ``Problem`` attributes (name, family, dim, search_space).

    Attributes:
        n_objectives: number of minimised objectives (2 or more).
        objective_names: one name per objective.
        ideal, nadir: per objective, the best and worst value over the reference front; objectives are
            normalised as ``(f - ideal) / (nadir - ideal)`` before hypervolumes are computed.
        reference_point: the hypervolume reference point in normalised units (e.g. 1.1 per objective).
        reference_source: how the reference front was obtained (analytic, or the seeded command that made it).
    """

    @property
    def n_objectives(self) -> int: ...

    @property
    def objective_names(self) -> tuple[str, ...]: ...

    @property
    def ideal(self) -> tuple[float, ...]: ...

    @property
    def nadir(self) -> tuple[float, ...]: ...

    @property
    def reference_point(self) -> tuple[float, ...]: ...

    @property
    def reference_source(self) -> str: ...

    def reference_hypervolume(self) -> float:
        """Hypervolume of the reference front, normalised objectives, up to ``reference_point``."""
        ...

    def evaluate_outcome(self, params: Mapping[str, Any]) -> Outcome:
        """All objective values at a dict holding every parameter of the search space."""
        ...


KINDS = ("single", "constrained", "multi", "iterative")


def kind_of(problem: Any) -> str:
    """``"multi"`` (several objectives), ``"constrained"`` (constraint values), ``"iterative"`` (a learning curve
    reported by step) or ``"single"``."""
    if int(getattr(problem, "n_objectives", 1)) > 1:
        return "multi"
    if is_iterative(problem):
        return "iterative"
    return "constrained" if getattr(problem, "constraint_names", ()) else "single"


def evaluate_outcome(problem: Any, params: Mapping[str, Any]) -> Outcome:
    """The problem's ``Outcome`` at ``params``: its own ``evaluate_outcome`` where it has one, else its scalar
    ``evaluate`` as a one-objective, unconstrained outcome."""
    if hasattr(problem, "evaluate_outcome"):
        return problem.evaluate_outcome(params)
    return Outcome((float(problem.evaluate(params)),))


def family_of(name: str) -> str:
    """The family part of a problem name (``"bbob/f01_i1_d2"`` -> ``"bbob"``)."""
    return name.split("/", 1)[0]


def normalised_regret(best_so_far: np.ndarray | float, f_opt: float, random_median: float) -> np.ndarray:
    """``max(0, (best - f_opt) / (random_median - f_opt))``, elementwise (see the module docstring)."""
    denom = random_median - f_opt
    if not denom > 0:
        raise ValueError(f"random_median ({random_median}) must exceed f_opt ({f_opt}) to normalise")
    return np.maximum((np.asarray(best_so_far, dtype=np.float64) - f_opt) / denom, 0.0)
