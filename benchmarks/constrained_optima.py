"""Reference optima of the classic constrained problems (``metabo.bench.problems.constrained``).

Seeded multistart SLSQP (scipy): ``--starts`` uniform random starting points per problem (seed ``--seed``),
each run with the problem's constraints tightened by ``MARGIN`` (``c(x) <= -1e-9``) as inequality constraints and
its box as bounds, so that the end points are strictly feasible despite SLSQP's tolerance; the best end point
whose every constraint is <= 0 is printed with its value, next to the value stored in the module, so a change of
definition or a better optimum shows. The margin moves the optimum by about 1e-9 relative. The stored
``known_optimum`` and ``optimiser`` values were copied from this command's output
(``python benchmarks/constrained_optima.py``, default arguments). Takes a few seconds.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy.optimize import minimize

from metabo.bench.problems.constrained import CLASSIC, AnalyticConstrainedProblem

MARGIN = 1e-9


def best_feasible(problem: AnalyticConstrainedProblem, starts: int, seed: int) -> tuple[float, np.ndarray]:
    """Best feasible SLSQP end point over ``starts`` seeded random starts (and the stored optimiser)."""
    rng = np.random.default_rng(seed)
    lo = np.array([p[1] for p in problem.parameters])
    hi = np.array([p[2] for p in problem.parameters])
    x0s = [lo + rng.random(len(lo)) * (hi - lo) for _ in range(starts)] + [np.array(problem.optimiser)]
    best_f, best_x = np.inf, lo
    for x0 in x0s:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SLSQP meets domain edges (sqrt of negatives) from poor starts
            res = minimize(lambda x: problem.function(x)[0], x0, method="SLSQP", bounds=list(zip(lo, hi)),
                           constraints=[{"type": "ineq",
                                         "fun": lambda x: -np.asarray(problem.function(x)[1]) - MARGIN}],
                           options={"maxiter": 500, "ftol": 1e-12})
        x = np.clip(res.x, lo, hi)
        f, cons = problem.function(x)
        if np.all(np.isfinite(cons)) and max(cons) <= 0.0 and f < best_f:
            best_f, best_x = float(f), x
    return best_f, best_x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=200, help="random starts per problem (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the starting points (default 0)")
    args = parser.parse_args()
    for key, problem in CLASSIC.items():
        f, x = best_feasible(problem, args.starts, args.seed)
        print(f"{key}: best feasible {f!r} at {tuple(float(v) for v in x)!r}; stored {problem.known_optimum!r} "
              f"(relative difference {(f - problem.known_optimum) / abs(problem.known_optimum):+.2e})")


if __name__ == "__main__":
    main()
