"""Classic constrained benchmark problems (``constrained/<name>``), with one real one beside them.

Each problem minimises an objective subject to inequality constraints, reported the Optuna 5 way: one value per
constraint, feasible when ``<= 0`` (``trial.set_constraint``). Constraints are written in scaled form
(``g / limit - 1``), which leaves the feasible set of the published definition unchanged and keeps the values of
order one. ``known_optimum`` is the best feasible value, computed by ``benchmarks/constrained_optima.py``
(seeded multistart SLSQP, scipy) and checked against the value published for the problem; ``optimiser`` is the
point it found (the tests evaluate the problem there).

* ``gardner``: Gardner et al. (2014), "Bayesian optimization with inequality constraints", simulation 1:
  ``cos(2 x0) cos(x1) + sin(x0)`` subject to ``cos(x0) cos(x1) - sin(x0) sin(x1) <= 0.5`` on ``[0, 6]^2``.
* ``branin_disc``: Gelbart et al. (2014), "Bayesian optimization with unknown constraints": Branin-Hoo on
  ``[-5, 10] x [0, 15]`` subject to ``(x0 - 2.5)^2 + (x1 - 7.5)^2 <= 50``; only Branin's minimiser
  ``(pi, 2.275)`` is feasible, so the optimum is Branin's, 0.397887.
* ``welded_beam``: Ragsdell and Phillips (1976) in Coello's (2000) seven-constraint form (shear and bending
  stress, weld geometry, cost, minimum weld size, deflection, buckling load); four variables ``h, l, t, b``;
  best known 1.724852 (Coello and Montes, 2002).
* ``pressure_vessel``: Sandgren (1990) / Kannan and Kramer (1994), continuous relaxation (the thicknesses
  ``Ts, Th`` in ``[0.0625, 6.1875]``, i.e. 1-99 multiples of 1/16 inch, relaxed to reals; ``R, L`` in
  ``[10, 200]``); best known continuous value 5885.3328.
* ``rf_digits_nodes`` (``constrained_sklearn``): a random forest's cross-validated error on scikit-learn's
  digits, subject to a model-size budget in tree nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution

from metabo.bench.problems.base import CHEAP_RANDOM_MEDIAN_POINTS, Outcome

FAMILY = "constrained"


def _gardner(x: np.ndarray) -> tuple[float, tuple[float, ...]]:
    f = math.cos(2 * x[0]) * math.cos(x[1]) + math.sin(x[0])
    c = math.cos(x[0]) * math.cos(x[1]) - math.sin(x[0]) * math.sin(x[1]) - 0.5
    return f, (c,)


def _branin_disc(x: np.ndarray) -> tuple[float, tuple[float, ...]]:
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    f = a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s
    return f, (((x[0] - 2.5) ** 2 + (x[1] - 7.5) ** 2) / 50.0 - 1.0,)


# welded beam constants: load (lb), overhang (in), Young's and shear moduli (psi), limits
_P, _L, _E, _G = 6000.0, 14.0, 30e6, 12e6
_TAU_MAX, _SIGMA_MAX, _DELTA_MAX = 13600.0, 30000.0, 0.25


def _welded_beam(x: np.ndarray) -> tuple[float, tuple[float, ...]]:
    h, l, t, b = (float(v) for v in x)
    f = 1.10471 * h**2 * l + 0.04811 * t * b * (14.0 + l)
    tau1 = _P / (math.sqrt(2) * h * l)
    m = _P * (_L + l / 2)
    r = math.sqrt(l**2 / 4 + ((h + t) / 2) ** 2)
    j = 2 * (math.sqrt(2) * h * l * (l**2 / 12 + ((h + t) / 2) ** 2))
    tau2 = m * r / j
    tau = math.sqrt(tau1**2 + 2 * tau1 * tau2 * l / (2 * r) + tau2**2)
    sigma = 6 * _P * _L / (b * t**2)
    delta = 4 * _P * _L**3 / (_E * t**3 * b)
    p_c = 4.013 * _E * math.sqrt(t**2 * b**6 / 36) / _L**2 * (1 - t / (2 * _L) * math.sqrt(_E / (4 * _G)))
    return f, (tau / _TAU_MAX - 1, sigma / _SIGMA_MAX - 1, h - b,
               (0.10471 * h**2 + 0.04811 * t * b * (14.0 + l)) / 5.0 - 1, 0.125 - h,
               delta / _DELTA_MAX - 1, 1 - p_c / _P)


_VESSEL_VOLUME = 1_296_000.0  # required volume, cubic inches


def _pressure_vessel(x: np.ndarray) -> tuple[float, tuple[float, ...]]:
    ts, th, r, length = (float(v) for v in x)
    f = 0.6224 * ts * r * length + 1.7781 * th * r**2 + 3.1661 * ts**2 * length + 19.84 * ts**2 * r
    volume = math.pi * r**2 * length + 4 / 3 * math.pi * r**3
    return f, (0.0193 * r - ts, 0.00954 * r - th, 1 - volume / _VESSEL_VOLUME, length / 240.0 - 1)


@dataclass(frozen=True)
class AnalyticConstrainedProblem:
    """A closed-form constrained problem over a box (see the module docstring for the definitions).

    Attributes:
        key: the name's last part.
        parameters: (name, low, high) per variable, in the order ``function`` reads them.
        function: ``x -> (objective, constraint values)``.
        constraint_names: one name per constraint value.
        known_optimum: best feasible value (computed, see ``benchmarks/constrained_optima.py``).
        optimiser: a feasible point attaining ``known_optimum`` (to 1e-6 relative).
        source: the publication and the published best value.
    """

    key: str
    parameters: tuple[tuple[str, float, float], ...]
    function: Callable[[np.ndarray], tuple[float, tuple[float, ...]]]
    constraint_names: tuple[str, ...]
    known_optimum: float
    optimiser: tuple[float, ...]
    source: str
    random_median_points: int = CHEAP_RANDOM_MEDIAN_POINTS

    @property
    def name(self) -> str:
        return f"{FAMILY}/{self.key}"

    @property
    def family(self) -> str:
        return FAMILY

    @property
    def dim(self) -> int:
        return len(self.parameters)

    def search_space(self) -> dict[str, BaseDistribution]:
        """One float per variable over its published bounds."""
        return {n: FloatDistribution(lo, hi) for n, lo, hi in self.parameters}

    def _x(self, params: Mapping[str, Any]) -> np.ndarray:
        return np.array([float(params[n]) for n, _, _ in self.parameters])

    def evaluate_outcome(self, params: Mapping[str, Any]) -> Outcome:
        """Objective and constraint values (``<= 0``: feasible) at ``params``."""
        f, cons = self.function(self._x(params))
        return Outcome((float(f),), tuple(float(c) for c in cons))

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """The objective alone, feasible or not."""
        return self.evaluate_outcome(params).values[0]

    def optimiser_params(self) -> dict[str, float]:
        """``optimiser`` as a parameter dict."""
        return {n: v for (n, _, _), v in zip(self.parameters, self.optimiser)}


# known optima and optimisers: `python benchmarks/constrained_optima.py` (its output is quoted in each source)
CLASSIC: dict[str, AnalyticConstrainedProblem] = {p.key: p for p in (
    AnalyticConstrainedProblem(
        "gardner", (("x0", 0.0, 6.0), ("x1", 0.0, 6.0)), _gardner, ("angle",),
        -2.0, (4.712388975961094, 0.0),
        "Gardner et al. (2014), simulation 1; minimum -2 at (3 pi / 2, 0)"),
    AnalyticConstrainedProblem(
        "branin_disc", (("x0", -5.0, 10.0), ("x1", 0.0, 15.0)), _branin_disc, ("disc",),
        0.39788735772973816, (3.141592644736644, 2.2749999852234604),
        "Gelbart et al. (2014); Branin's minimum 0.397887 at (pi, 2.275), the only feasible minimiser"),
    AnalyticConstrainedProblem(
        "welded_beam", (("h", 0.1, 2.0), ("l", 0.1, 10.0), ("t", 0.1, 10.0), ("b", 0.1, 2.0)), _welded_beam,
        ("shear_stress", "bending_stress", "weld_thickness", "cost", "min_weld", "deflection", "buckling"),
        1.7248523111837595, (0.20572963883606846, 3.4704886891001734, 9.036623913775248, 0.20572963982520898),
        "Coello (2000) form of Ragsdell and Phillips (1976); best known 1.724852 (Coello and Montes, 2002)"),
    AnalyticConstrainedProblem(
        "pressure_vessel", (("Ts", 0.0625, 6.1875), ("Th", 0.0625, 6.1875), ("R", 10.0, 200.0),
                            ("L", 10.0, 200.0)), _pressure_vessel,
        ("shell_thickness", "head_thickness", "volume", "length"),
        5885.332788331894, (0.7781686429282302, 0.3846491628434182, 40.31961874137041, 200.0),
        "Sandgren (1990), Kannan and Kramer (1994), continuous relaxation; best known 5885.3328"),
)}


def problems() -> list[Any]:
    """The classic problems, then the scikit-learn model-size problem."""
    from metabo.bench.problems.constrained_sklearn import RandomForestSizeProblem

    return [*CLASSIC.values(), RandomForestSizeProblem()]


def get_problem(name: str) -> Any:
    """The problem called ``name`` (``constrained/<key>``)."""
    for problem in problems():
        if problem.name == name:
            return problem
    raise KeyError(f"unknown problem name {name!r}; constrained problems: "
                   f"{', '.join(p.name for p in problems())}")
