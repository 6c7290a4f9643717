"""Multi-objective test functions with analytic Pareto fronts (``mo/zdt<k>_d<n>``, ``mo/dtlz2_m<M>_d<n>``).

Standard definitions, every variable in ``[0, 1]``, all objectives minimised:

* ZDT1-3 (Zitzler, Deb and Thiele, 2000): ``f1 = x0``, ``g = 1 + 9 mean(x1..)``, ``f2 = g h(f1 / g)`` with
  ``h(u) = 1 - sqrt(u)`` (ZDT1, convex front), ``1 - u^2`` (ZDT2, concave) and
  ``1 - sqrt(u) - u sin(10 pi f1)`` (ZDT3, five disconnected pieces). The front is ``g = 1``.
* DTLZ2 (Deb, Thiele, Laumanns and Zitzler, 2002) with ``M`` objectives and ``n = M + k - 1`` variables:
  ``g = sum((x_i - 0.5)^2)`` over the last ``k``, objectives on the sphere of radius ``1 + g``; the front is the
  unit sphere's positive orthant (``g = 0``).

Objectives are normalised by the front's ideal and nadir points (``(0, 0)`` and ``(1, 1)`` except ZDT3's) and
hypervolumes taken up to the reference point 1.1 per objective. The reference hypervolumes are analytic:
``1.1^2 - 1/3`` (ZDT1), ``1.1^2 - 2/3`` (ZDT2), ``1.1^M - V`` (DTLZ2, ``V`` the unit ball's orthant: ``pi/4`` for
M=2, ``pi/6`` for M=3); ZDT3's front, ideal and nadir come from its exact front sampled at 200,001 evenly spaced
``f1`` values and Pareto-filtered (hypervolume error below 1e-5). Every problem's ``optimal_params(t)`` gives a
point on the front, for the tests.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution

from metabo.bench.hypervolume import hypervolume, normalise_objectives, pareto_front
from metabo.bench.problems.base import Outcome

FAMILY = "mo"
REFERENCE_POINT = 1.1  # per objective, in normalised units
ZDT3_FRONT_POINTS = 200_001
DTLZ_K = 5  # distance variables of DTLZ2 (the standard is 10; 5 keeps the problems at 6-7 dimensions)
DEFAULT_ZDT_DIM = 6
MAX_DIM = 30
_NAME = re.compile(r"^mo/(?:zdt(?P<zdt>[123])_d(?P<n>\d+)|dtlz2_m(?P<m>[23])_d(?P<dn>\d+))$")


def _zdt_h(kind: int, u: np.ndarray, f1: np.ndarray) -> np.ndarray:
    if kind == 1:
        return 1 - np.sqrt(u)
    if kind == 2:
        return 1 - u**2
    return 1 - np.sqrt(u) - u * np.sin(10 * np.pi * f1)


@functools.lru_cache(maxsize=None)
def zdt3_front() -> np.ndarray:
    """ZDT3's Pareto front (rows ``(f1, f2)``), from ``ZDT3_FRONT_POINTS`` evenly spaced ``f1`` values."""
    f1 = np.linspace(0.0, 1.0, ZDT3_FRONT_POINTS)
    return pareto_front(np.column_stack([f1, _zdt_h(3, f1, f1)]))


@dataclass(frozen=True)
class TestFunction:
    """One ZDT or DTLZ2 problem (see the module docstring)."""

    __test__ = False  # not a pytest class, whatever its name

    kind: str  # "zdt1", "zdt2", "zdt3" or "dtlz2"
    n_var: int
    n_objectives: int = 2
    known_optimum: float | None = None
    random_median_points: int = 0  # no random median: the hypervolume regret is normalised by the front

    def __post_init__(self) -> None:
        low = 2 if self.kind.startswith("zdt") else self.n_objectives
        if not low <= self.n_var <= MAX_DIM:
            raise ValueError(f"{self.kind} takes {low} to {MAX_DIM} variables, got {self.n_var}")

    @property
    def name(self) -> str:
        if self.kind == "dtlz2":
            return f"{FAMILY}/dtlz2_m{self.n_objectives}_d{self.n_var}"
        return f"{FAMILY}/{self.kind}_d{self.n_var}"

    @property
    def family(self) -> str:
        return FAMILY

    @property
    def dim(self) -> int:
        return self.n_var

    @property
    def objective_names(self) -> tuple[str, ...]:
        return tuple(f"f{i + 1}" for i in range(self.n_objectives))

    def search_space(self) -> dict[str, BaseDistribution]:
        """``x0 .. x{n-1}``, each uniform on [0, 1]."""
        return {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(self.n_var)}

    def objectives(self, x: np.ndarray) -> np.ndarray:
        """Objective vector at the variable vector ``x``."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "dtlz2":
            m = self.n_objectives
            radius = 1 + float(np.sum((x[m - 1:] - 0.5) ** 2))
            angles = x[: m - 1] * np.pi / 2
            out = np.empty(m)
            for i in range(m):  # f_i: cosines of the first m-1-i angles, times a sine of the next (i > 0)
                out[i] = radius * np.prod(np.cos(angles[: m - 1 - i])) * (np.sin(angles[m - 1 - i]) if i else 1.0)
            return out
        f1 = x[0]
        g = 1 + 9 * float(np.mean(x[1:]))
        return np.array([f1, g * float(_zdt_h(int(self.kind[-1]), np.array(f1 / g), np.array(f1)))])

    def evaluate_outcome(self, params: Mapping[str, Any]) -> Outcome:
        """The objective vector at ``params`` (no constraints)."""
        x = np.array([float(params[f"x{i}"]) for i in range(self.n_var)])
        return Outcome(tuple(float(v) for v in self.objectives(x)))

    def optimal_params(self, t: float) -> dict[str, float]:
        """A Pareto-optimal point: first variable(s) ``t``, distance variables at their optimum."""
        if self.kind == "dtlz2":
            m = self.n_objectives
            return {f"x{i}": (t if i < m - 1 else 0.5) for i in range(self.n_var)}
        return {f"x{i}": (t if i == 0 else 0.0) for i in range(self.n_var)}

    @property
    def ideal(self) -> tuple[float, ...]:
        if self.kind == "zdt3":
            return tuple(float(v) for v in zdt3_front().min(0))
        return (0.0,) * self.n_objectives

    @property
    def nadir(self) -> tuple[float, ...]:
        if self.kind == "zdt3":
            return tuple(float(v) for v in zdt3_front().max(0))
        return (1.0,) * self.n_objectives

    @property
    def reference_point(self) -> tuple[float, ...]:
        return (REFERENCE_POINT,) * self.n_objectives

    @property
    def reference_source(self) -> str:
        if self.kind == "zdt3":
            return f"ZDT3's exact front sampled at {ZDT3_FRONT_POINTS:,} f1 values"
        return "analytic front (hypervolume in closed form)"

    def reference_hypervolume(self) -> float:
        """The front's hypervolume in normalised units up to ``reference_point`` (see the module docstring)."""
        box = REFERENCE_POINT**self.n_objectives
        if self.kind == "zdt1":
            return box - 1 / 3
        if self.kind == "zdt2":
            return box - 2 / 3
        if self.kind == "dtlz2":
            return box - (math.pi / 4 if self.n_objectives == 2 else math.pi / 6)
        return hypervolume(normalise_objectives(zdt3_front(), self.ideal, self.nadir), self.reference_point)


def problems() -> list[Any]:
    """ZDT1-3 in ``DEFAULT_ZDT_DIM`` dimensions, DTLZ2 with 2 and 3 objectives, and the YAHPO problem where its
    data are present."""
    from metabo.bench.problems import mo_yahpo

    out: list[Any] = [TestFunction(f"zdt{k}", DEFAULT_ZDT_DIM) for k in (1, 2, 3)]
    out += [TestFunction("dtlz2", m + DTLZ_K - 1, m) for m in (2, 3)]
    if mo_yahpo.available():
        out.append(mo_yahpo.XgboostErrorTimeProblem())
    return out


def get_problem(name: str) -> Any:
    """``mo/zdt<k>_d<n>``, ``mo/dtlz2_m<M>_d<n>`` (any ``n`` the function takes) or the YAHPO problem."""
    from metabo.bench.problems import mo_yahpo

    if name.startswith(f"{FAMILY}/{mo_yahpo.KEY_PREFIX}"):
        return mo_yahpo.parse_name(name)
    match = _NAME.match(name)
    if match is None:
        raise KeyError(f"unknown problem name {name!r}; expected e.g. 'mo/zdt1_d6', 'mo/dtlz2_m3_d7' or "
                       f"'mo/{mo_yahpo.KEY_PREFIX}{mo_yahpo.DEFAULT_INSTANCE}'")
    try:
        if match["zdt"]:
            return TestFunction(f"zdt{match['zdt']}", int(match["n"]))
        return TestFunction("dtlz2", int(match["dn"]), int(match["m"]))
    except ValueError as exc:
        raise KeyError(str(exc)) from exc
