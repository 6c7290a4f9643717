"""Exact hypervolume and Pareto filtering for minimised objectives (2-3 objectives in the benchmarks).

``hypervolume(points, reference)`` is the Lebesgue measure of the region dominated by ``points`` and bounded by
``reference``: an exact sweep in 2-D, and in more dimensions exact slicing along the last objective (each slab
between consecutive values is a lower-dimensional hypervolume times its thickness). Slicing costs
O(n^(d-1) log n), fine for the few hundred points of a benchmark front. Points not strictly better than the
reference in every objective contribute nothing.

``normalised_hypervolume_regret`` is the benchmark score of a set of observed objective vectors:
``max(0, (HV(reference front) - HV(observed)) / HV(reference front))`` with objectives first scaled by the
problem's ideal and nadir points, so 0 means the observed front is as good as the reference front and 1 that no
observed point dominates the reference point.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (n, d), minimising; of equal rows only the first."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if points.ndim == 2 and points.shape[1] == 2:  # O(n log n): sweep in (f1, f2) order
        order = np.lexsort((points[:, 1], points[:, 0]))
        keep = np.zeros(n, dtype=bool)
        best = np.inf
        for i in order:
            if points[i, 1] < best:
                keep[i], best = True, points[i, 1]
        return keep
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if not keep[i]:
            continue
        # rows that i dominates (or equals, after i) are dropped
        dominated = np.all(points[i] <= points, axis=1) & (np.any(points[i] < points, axis=1)
                                                            | (np.arange(n) > i))
        keep &= ~dominated
    return keep


def pareto_front(points: np.ndarray) -> np.ndarray:
    """The non-dominated rows of ``points`` (minimising), in their original order."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    return points[pareto_mask(points)] if len(points) else points


def _hv2(points: np.ndarray, reference: np.ndarray) -> float:
    order = np.argsort(points[:, 0], kind="stable")
    volume, best_y = 0.0, reference[1]
    for x, y in points[order]:
        if y < best_y:
            volume += (reference[0] - x) * (best_y - y)
            best_y = y
    return volume


def _hv(points: np.ndarray, reference: np.ndarray) -> float:
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(reference[0] - points[:, 0].min())
    if points.shape[1] == 2:
        return _hv2(points, reference)
    order = np.argsort(points[:, -1], kind="stable")
    points = points[order]
    volume = 0.0
    for i in range(len(points)):
        top = points[i + 1, -1] if i + 1 < len(points) else reference[-1]
        if top > points[i, -1]:  # the slab where exactly the first i + 1 points are below in the last objective
            volume += _hv(pareto_front(points[: i + 1, :-1]), reference[:-1]) * (top - points[i, -1])
    return volume


def hypervolume(points: np.ndarray | Sequence[Sequence[float]], reference: np.ndarray | Sequence[float]) -> float:
    """Exact hypervolume dominated by ``points`` (n, d) up to ``reference`` (d,), all objectives minimised."""
    reference = np.asarray(reference, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64).reshape(-1, len(reference))
    points = points[np.all(points < reference, axis=1) & np.all(np.isfinite(points), axis=1)]
    return float(_hv(pareto_front(points), reference)) if len(points) else 0.0


def normalise_objectives(points: np.ndarray, ideal: Sequence[float], nadir: Sequence[float]) -> np.ndarray:
    """``(points - ideal) / (nadir - ideal)``: the reference front then spans [0, 1] in every objective."""
    ideal_a, nadir_a = np.asarray(ideal, dtype=np.float64), np.asarray(nadir, dtype=np.float64)
    if not np.all(nadir_a > ideal_a):
        raise ValueError(f"nadir {list(nadir_a)} must exceed ideal {list(ideal_a)} in every objective")
    return (np.asarray(points, dtype=np.float64) - ideal_a) / (nadir_a - ideal_a)


def normalised_hypervolume_regret(points: np.ndarray, ideal: Sequence[float], nadir: Sequence[float],
                                  reference_point: Sequence[float], reference_hypervolume: float) -> float:
    """``max(0, (HV_ref - HV(points)) / HV_ref)`` in the ideal/nadir-normalised space (see the module docstring).

    ``reference_point`` is in normalised units (e.g. 1.1 per objective); ``reference_hypervolume`` is the
    reference front's hypervolume in the same space.
    """
    if not reference_hypervolume > 0:
        raise ValueError(f"reference_hypervolume must be positive, got {reference_hypervolume}")
    points = np.asarray(points, dtype=np.float64).reshape(-1, len(ideal))
    hv = hypervolume(normalise_objectives(points, ideal, nadir), reference_point) if len(points) else 0.0
    return max(0.0, (reference_hypervolume - hv) / reference_hypervolume)
