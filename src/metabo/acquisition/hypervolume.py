"""Acquisitions for several objectives, from the per-objective predictive distributions.

The model predicts each objective's bar distribution on its own (its own context), so joint samples are drawn by
the inverse CDF of each objective at fixed scrambled-Sobol probabilities (``BarDistribution.quantile``): the
same probabilities for every candidate, so candidates are compared on common random numbers and the score is
differentiable for the gradient refinement.

* 2-3 objectives: log expected hypervolume improvement (``LogExpectedHypervolumeImprovement``) over the
  current feasible Pareto front, with the non-dominated region split into boxes (``non_dominated_boxes``).
* more: ParEGO's augmented Chebyshev scalarisation with weights drawn afresh for every suggestion
  (``LogExpectedScalarisedImprovement``), since exact box decompositions grow exponentially with the number
  of objectives.

Samples are drawn on the model's scale, but improvement is measured in the objectives' own units
(``MeasuredObjectives``: the exact inverse of each objective's value transform, larger is better, divided by the
observed range), as the user's and every benchmark's hypervolume is: the model's scale compresses each
objective's worse half, which on that scale would shrink the hypervolume of points that are good in one
objective and poor in another, the extremes of the front.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import qmc
from torch import Tensor

from metabo.acquisition.functions import Acquisition
from metabo.model.transformer import TNPModel
from metabo.normalise import ObjectiveTransform

MAX_EHVI_OBJECTIVES = 3
# Quasi-random samples per candidate: sampling costs about as much as the network's pass over the outputs.
N_SAMPLES = 32
# Below this expected improvement a candidate is ranked by the sum of its per-objective log-EI instead.
_TINY = 1e-30
_FALLBACK_OFFSET = 1000.0


def reference_point(y: np.ndarray) -> np.ndarray:
    """A reference point just worse than every point of ``y`` (n, m), larger is better (the Pareto front, for
    ``MeasuredObjectives``): the worst value of each objective less a tenth of its range (1 if the range is 0)."""
    lo, hi = y.min(0), y.max(0)
    spread = np.where(hi > lo, hi - lo, 1.0)
    return lo - 0.1 * spread


class MeasuredObjectives:
    """Model-scale objective values -> the objectives' own units, larger is better, scaled so the observed
    values span [0, 1] per objective. The reference point is the Pareto front's nadir less a tenth of the front's
    range (``reference_point`` of the front), as BoTorch infers one: improvement far behind the front, where
    dominated points lie, earns nothing.

    Args:
        transforms: each objective's transform (``metabo.outcomes.Outcomes.transforms``).
        observed: (n, m) the observed objective values on the model's scale.
        front: the rows of ``observed`` on the (feasible) Pareto front.
    """

    def __init__(self, transforms: list[ObjectiveTransform], observed: np.ndarray, front: np.ndarray) -> None:
        self.transforms = transforms
        self.observed = observed
        raw = np.stack([t.sign * t.inverse(observed[:, k]) for k, t in enumerate(transforms)], 1)
        self.lo = raw.min(0)
        self.spread = np.where(raw.max(0) > self.lo, raw.max(0) - self.lo, 1.0)
        self.values = (raw - self.lo) / self.spread
        self.front = front
        self.reference = reference_point(self.values[front])
        # Model-scale values at the reference: every sample below it adds nothing, so samples are clamped there
        # before the inverse, which keeps far tails (the inverse grows exponentially there) finite.
        at_reference = self.lo + self.reference * self.spread
        self.floor = [float(t.transform(np.array([t.sign * at_reference[k]]))[0]) for k, t in enumerate(transforms)]

    def __call__(self, samples: Tensor) -> Tensor:
        """Measured values (..., m) of model-scale ``samples`` (..., m), differentiable."""
        columns = [(t.sign * t.inverse_tensor(samples[..., k].double().clamp_min(self.floor[k])) - self.lo[k])
                   / self.spread[k] for k, t in enumerate(self.transforms)]
        return torch.stack(columns, -1).to(samples.dtype)


def non_dominated_boxes(front: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners (J, m) of boxes that tile the region above ``reference`` dominated by no point of
    ``front`` (larger is better; upper corners may be +inf).

    The first m - 1 coordinates are cut on the grid of the front's values; in each cell the free region of the
    last coordinate starts above the best last value of the front points that dominate the whole cell. Cells of
    one grid row with the same start are merged.
    """
    m = front.shape[1]
    front = front[np.all(front > reference, axis=1)]
    cuts = [np.unique(np.concatenate([[reference[k]], front[:, k]])) for k in range(m - 1)]
    lows, highs = np.meshgrid(*[c for c in cuts], indexing="ij"), np.meshgrid(
        *[np.append(c[1:], np.inf) for c in cuts], indexing="ij")
    lower = np.stack([g.reshape(-1) for g in lows], 1) if m > 1 else np.zeros((1, 0))
    upper = np.stack([g.reshape(-1) for g in highs], 1) if m > 1 else np.zeros((1, 0))
    # A front point dominates a whole cell in the first m - 1 coordinates when it reaches the cell's upper corner.
    covers = np.all(front[None, :, : m - 1] >= upper[:, None, :], axis=-1)  # (cells, points)
    start = np.where(covers, front[None, :, m - 1], -np.inf).max(1, initial=-np.inf)
    start = np.maximum(start, reference[m - 1])
    lower, upper, start = _merge_first_axis(lower, upper, start)
    lower = np.concatenate([lower, start[:, None]], 1)
    upper = np.concatenate([upper, np.full((len(start), 1), np.inf)], 1)
    return lower, upper


def _merge_first_axis(lower: np.ndarray, upper: np.ndarray, start: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge cells adjacent along the first coordinate that agree on the other cut coordinates and the start."""
    if lower.shape[1] == 0:
        return lower, upper, start
    order = np.lexsort([lower[:, 0]] + [lower[:, k] for k in range(1, lower.shape[1])] + [start])
    lower, upper, start = lower[order], upper[order], start[order]
    keep_lower, keep_upper, keep_start = [lower[0].copy()], [upper[0].copy()], [start[0]]
    for i in range(1, len(start)):
        same = start[i] == keep_start[-1] and np.array_equal(lower[i, 1:], keep_lower[-1][1:]) and \
            lower[i, 0] == keep_upper[-1][0]
        if same:
            keep_upper[-1][0] = upper[i, 0]
        else:
            keep_lower.append(lower[i].copy())
            keep_upper.append(upper[i].copy())
            keep_start.append(start[i])
    return np.array(keep_lower), np.array(keep_upper), np.array(keep_start)


def hypervolume_improvement(samples: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """Hypervolume each point of ``samples`` (..., m) adds to the front whose free region the boxes tile."""
    extent = (torch.minimum(samples[..., None, :], upper) - lower).clamp_min(0.0)
    return extent.prod(-1).sum(-1)


class _SampledObjectives(Acquisition):
    """Joint samples (Q, S, m) of the first ``n_objectives`` outputs at fixed quasi-random probabilities."""

    def __init__(self, model: TNPModel, n_objectives: int, n_samples: int, seed: int) -> None:
        super().__init__(model)
        self.n_objectives = n_objectives
        u = qmc.Sobol(n_objectives, scramble=True, seed=seed).random(n_samples)
        self.probabilities = torch.as_tensor(u, dtype=torch.float32)

    def samples(self, logits: Tensor) -> Tensor:
        per_objective = [self.model.bar.quantile(logits[k], self.probabilities[:, k])
                         for k in range(self.n_objectives)]
        return torch.stack(per_objective, -1)


class LogExpectedHypervolumeImprovement(_SampledObjectives):
    """log E[hypervolume improvement] over the feasible Pareto front (``measured.front``), 2-3 objectives,
    measured by ``measured``.

    Far from any improvement (every sample dominated) the score falls back to the sum of the per-objective
    log-EI against each objective's best, shifted below every positive improvement, so the search still has a
    direction.
    """

    def __init__(self, model: TNPModel, measured: MeasuredObjectives, seed: int) -> None:
        m = measured.values.shape[1]
        if not 2 <= m <= MAX_EHVI_OBJECTIVES:
            raise ValueError(f"hypervolume improvement takes 2-{MAX_EHVI_OBJECTIVES} objectives, got {m}")
        super().__init__(model, m, N_SAMPLES, seed)
        self.measured = measured
        lower, upper = non_dominated_boxes(measured.values[measured.front], measured.reference)
        self.lower = torch.as_tensor(lower, dtype=torch.float32)
        self.upper = torch.as_tensor(upper, dtype=torch.float32)
        self.best = torch.as_tensor(measured.observed[measured.front].max(0), dtype=torch.float32)
        self._improvement_per_bucket = [model.bar.improvement_per_bucket(b) for b in self.best]

    def score_outputs(self, logits: Tensor, features: Tensor) -> Tensor:
        ehvi = hypervolume_improvement(self.measured(self.samples(logits)), self.lower, self.upper).mean(-1)
        log_ehvi = torch.log(ehvi.clamp_min(_TINY))
        far = ehvi <= _TINY
        if not bool(far.any()):
            return log_ehvi
        rows = far.nonzero(as_tuple=True)[0]  # often a few of a large pool
        fallback = sum(self.model.bar.log_expected_improvement(logits[k, rows], self.best[k], per_bucket)
                       for k, per_bucket in enumerate(self._improvement_per_bucket))
        return log_ehvi.index_put((rows,), fallback - _FALLBACK_OFFSET)


class LogExpectedScalarisedImprovement(_SampledObjectives):
    """log E[improvement of an augmented Chebyshev scalarisation] (ParEGO), for any number of objectives.

    ``s(y) = min_k w_k z_k + 0.05 sum_k w_k z_k`` with ``z`` the measured objectives (``MeasuredObjectives``) above
    the reference point, and weights ``w`` drawn uniformly from the simplex by ``rng``: each suggestion targets
    another part of the front. ``feasible`` marks the observed rows the best scalarised value is taken over.
    """

    def __init__(self, model: TNPModel, measured: MeasuredObjectives, feasible: np.ndarray,
                 rng: np.random.RandomState, seed: int, n_samples: int = N_SAMPLES) -> None:
        m = measured.values.shape[1]
        super().__init__(model, m, n_samples, seed)
        self.measured = measured
        self.weights = torch.as_tensor(rng.dirichlet(np.ones(m)), dtype=torch.float32)
        self.reference = torch.as_tensor(measured.reference, dtype=torch.float32)
        self.best = float(self.scalarise(torch.as_tensor(measured.values[feasible], dtype=torch.float32)).max())

    def scalarise(self, y: Tensor) -> Tensor:
        z = self.weights * (y - self.reference)
        return z.min(-1).values + 0.05 * z.sum(-1)

    def score_outputs(self, logits: Tensor, features: Tensor) -> Tensor:
        improvement = (self.scalarise(self.measured(self.samples(logits))) - self.best).clamp_min(0.0).mean(-1)
        return torch.log(improvement.clamp_min(_TINY))
