"""Per-run regret curves of constrained and multi-objective runs (entry ``n - 1``: after ``n`` evaluations).

* Constrained: the normalised regret of the best *feasible* value so far,
  ``min(1, max(0, (best_feasible - f_opt) / (feasible_random_median - f_opt)))``, and 1 while no trial has been
  feasible: "no feasible point yet" scores like "no better than a typical feasible random point".
* Multi-objective: the normalised hypervolume regret of the feasible trials so far
  (``metabo.bench.hypervolume.normalised_hypervolume_regret``): 1 while no point dominates the reference point.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from metabo.bench.hypervolume import hypervolume, normalise_objectives
from metabo.bench.problems.base import normalised_regret


def feasible_regret_curve(values: Sequence[float], feasible: Sequence[bool], f_opt: float,
                          random_median: float) -> np.ndarray:
    """Regret of the best feasible value after each evaluation (see the module docstring)."""
    best = np.minimum.accumulate(np.where(np.asarray(feasible, dtype=bool), np.asarray(values, dtype=np.float64),
                                          np.inf))
    out = np.ones(len(best))
    found = np.isfinite(best)
    out[found] = np.minimum(normalised_regret(best[found], f_opt, random_median), 1.0)
    return out


def feasible_fraction_curve(feasible: Sequence[bool]) -> np.ndarray:
    """Fraction of feasible trials among the first ``n``, for every ``n``."""
    flags = np.asarray(feasible, dtype=np.float64)
    return np.cumsum(flags) / np.arange(1, len(flags) + 1)


def hypervolume_regret_curve(vectors: np.ndarray, feasible: Sequence[bool] | None,
                             reference: Mapping[str, object]) -> np.ndarray:
    """Normalised hypervolume regret of the first ``n`` (feasible) objective vectors, for every ``n``.

    ``reference`` holds ``ideal``, ``nadir``, ``reference_point`` (normalised units) and
    ``reference_hypervolume``, as the store keeps them for a multi-objective problem.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    ref_point = np.asarray(reference["reference_point"], dtype=np.float64)
    hv_ref = float(reference["reference_hypervolume"])  # type: ignore[arg-type]
    if not hv_ref > 0:
        raise ValueError(f"reference hypervolume must be positive, got {hv_ref}")
    points = normalise_objectives(vectors.reshape(len(vectors), -1), reference["ideal"],  # type: ignore[arg-type]
                                  reference["nadir"])  # type: ignore[arg-type]
    keep = np.ones(len(points), dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    out = np.empty(len(points))
    front = np.empty((0, points.shape[1]))
    regret = 1.0
    for i, p in enumerate(points):
        inside = keep[i] and bool(np.all(p < ref_point)) and bool(np.all(np.isfinite(p)))
        # only a point inside the box and not weakly dominated by the front changes the hypervolume
        if inside and not np.any(np.all(front <= p, axis=1)):
            front = np.vstack([front[~np.all(p <= front, axis=1)], p])
            regret = max(0.0, (hv_ref - hypervolume(front, ref_point)) / hv_ref)
        out[i] = regret
    return out
