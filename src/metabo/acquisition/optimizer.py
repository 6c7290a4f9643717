"""The candidate search: maximise an ``Acquisition`` over a ``Subspace`` of the encoded unit cube.

Candidate pool: a scrambled Sobol set plus Gaussian perturbations of the best context points and of extra seed
points (categorical coordinates resampled in a fifth of the perturbed copies). All candidates are scored against
one encoded context; the best few are refined by gradient ascent through the network (continuous coordinates
only; each step a plain one or a line search), snapped to admissible values, re-scored, and the best wins.

Candidates within ``min_distance`` (max-norm in the unit cube) of a point already evaluated or pending are
skipped: on a deterministic objective such a point teaches nothing, yet its predictive spread (the prior's
observation noise) keeps its expected improvement above that of unexplored regions, so without the rule the
search can stall on its incumbent.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch
from scipy.spatial.distance import cdist
from scipy.stats import qmc
from torch import Tensor

from metabo.acquisition.functions import Acquisition
from metabo.model.transformer import ContextCache
from metabo.space import Subspace


@dataclass(frozen=True)
class CandidateSearchConfig:
    """How candidates are proposed and refined.

    Attributes:
        n_candidates: size of the Sobol part of the pool; by default 512, and ``MULTI_OBJECTIVE_SEARCH``'s in studies
            with several objectives.
        n_local: Gaussian perturbations of the best points and seeds.
        n_incumbents: best context points perturbed.
        n_refine: best candidates refined by gradient ascent through the network; by default 4, and
            ``WIDE_SEARCH``'s in spaces of more than ``WIDE_SPACE_DIMS`` encoded dimensions.
        refine_steps: gradient steps per refined candidate (suggestion time grows with it); by default 2, and
            ``MULTI_OBJECTIVE_SEARCH``'s in studies with several objectives or ``WIDE_SEARCH``'s in wide spaces.
        refine_lr: first step length (max-norm); it shrinks by 0.85 per step.
        refine_scales: step lengths tried at each gradient step, as multiples of the current one. One (the
            default): a plain gradient step. Several: a line search, all of them scored in one batched pass and
            the best taken, so fewer (costly, sequential) gradient steps reach as far.
        min_distance: candidates closer than this (max-norm in the unit cube, where every parameter spans
            [0, 1]) to an evaluated or running trial are skipped; 0 allows repeats (very noisy objectives).
        n_bound: extra copies of the best points and seeds in which each continuous coordinate moves onto its
            nearer bound with probability 1/2, so optima in corners of the space are proposed. 0 (none) by
            default; ``TRANSFER_SEARCH`` (the default with related studies) takes 128, which lowered transfer
            regret on the meta-learning stage and measured no gain zero-shot (BENCHMARKS.md, What was tried).
    """

    n_candidates: int = 512  # Sobol points
    n_local: int = 256  # perturbed copies of the best points and seeds
    n_incumbents: int = 5
    n_refine: int = 4
    refine_steps: int = 2  # 10 took more time for no clear gain (bench name metabo-refine10)
    refine_lr: float = 0.05
    refine_scales: tuple[float, ...] = (1.0,)
    min_distance: float = 0.01  # 0: repeats allowed (bench name metabo-repeats)
    n_bound: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_distance < 1.0:
            raise ValueError(f"min_distance must be in [0, 1), got {self.min_distance}")
        for name in ("n_candidates", "n_refine"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("n_local", "n_incumbents", "refine_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not self.refine_scales or min(self.refine_scales) <= 0:
            raise ValueError(f"refine_scales must be positive step multiples, got {self.refine_scales}")


TRANSFER_SEARCH = CandidateSearchConfig(n_bound=128)  # the candidate search with related studies
LINE_SEARCH_SCALES = (2.0, 1.0, 0.5, 0.25, 0.125)  # the step multiples of the searches below that line-search
# How the default search differs with several objectives, whose every candidate costs a model pass per output:
# log-EHVI gained from 10 plain refinement steps where single-objective EI measured no gain; 3 steps with a line
# search reach as far in fewer sequential passes, and half the quasi-random pool measured no loss (BENCHMARKS.md,
# What was tried).
MULTI_OBJECTIVE_SEARCH = MappingProxyType(dict(n_candidates=256, refine_steps=3, refine_scales=LINE_SEARCH_SCALES))
# How the default search differs in spaces of more than WIDE_SPACE_DIMS encoded dimensions (those the shipped
# `wide` model serves), where two plain gradient steps from four starts barely move a candidate: twice the starts
# and ten steps with a line search measured lower regret on BBOB in 20 and 40 dimensions, the gain in 40, and
# none in 2 and 5 dimensions; with related studies it was level or worse, so transfer keeps its own search
# (BENCHMARKS.md, What was tried).
WIDE_SPACE_DIMS = 16
WIDE_SEARCH = MappingProxyType(dict(n_refine=8, refine_steps=10, refine_scales=LINE_SEARCH_SCALES))


@dataclass
class Suggestion:
    """The chosen point (subspace coordinates) with its predictive logits and acquisition value."""

    x: np.ndarray
    logits: Tensor
    acquisition: float


def score_points(model_cache: ContextCache, acquisition: Acquisition, x: np.ndarray | Tensor
                 ) -> tuple[Tensor, Tensor]:
    """Acquisition values (Q,) and the first output's bucket logits (Q, K) of points ``x`` (Q, d) against an
    encoded context (one row per model output)."""
    x = torch.as_tensor(x, dtype=torch.float32)[None]  # one candidate set, read against every output's context
    return acquisition(acquisition.model.candidate_features(model_cache, x))


def optimize_acquisition(cache: ContextCache, acquisition: Acquisition, subspace: Subspace, incumbents: np.ndarray,
                         x_seen: np.ndarray, rng: np.random.RandomState, seeds: np.ndarray | None = None,
                         cfg: CandidateSearchConfig = CandidateSearchConfig()) -> Suggestion:
    """The best candidate found in ``subspace``.

    Args:
        cache: the encoded context (``metabo.context.encode``).
        acquisition: what to maximise.
        subspace: where to search; every point argument is in its coordinates.
        incumbents: context points, best first, whose neighbourhoods the local pool explores.
        x_seen: evaluated or pending points: candidates within ``cfg.min_distance`` of one are skipped, unless
            every candidate is.
        rng: draws the pool.
        seeds: extra points to search around (the best points of related studies).
        cfg: pool sizes and refinement settings.
    """
    continuous = subspace.continuous
    pool = subspace.snap(_pool(subspace, incumbents[: cfg.n_incumbents], rng, seeds, cfg))
    with torch.no_grad():
        scores = score_points(cache, acquisition, pool)[0]
    scores = _skip_seen(scores, pool, x_seen, cfg.min_distance)
    order = torch.argsort(scores, descending=True)
    starts = pool[order[: cfg.n_refine].numpy()]
    movable = continuous & ~subspace.inactive(starts)  # (n, d): inactive coordinates stay at 0
    refined = _refine(cache, acquisition, starts, movable, cfg) if continuous.any() and cfg.refine_steps > 0 \
        else starts
    finalists = subspace.snap(np.concatenate([refined, starts[:1]], axis=0))
    with torch.no_grad():
        final_scores, logits = score_points(cache, acquisition, finalists)
    final_scores = _skip_seen(final_scores, finalists, x_seen, cfg.min_distance)
    i = int(torch.argmax(final_scores))
    return Suggestion(finalists[i], logits[i], float(final_scores[i]))


def _skip_seen(scores: Tensor, candidates: np.ndarray, x_seen: np.ndarray, min_distance: float) -> Tensor:
    """``scores`` with candidates near a seen point set to -inf (unchanged if that would leave none)."""
    if min_distance <= 0 or not len(x_seen):
        return scores
    # cdist keeps this (Q, n_seen), not (Q, n_seen, d): every trial of the study counts, not just the context
    nearest = cdist(candidates, x_seen, "chebyshev").min(1)
    away = torch.as_tensor(nearest >= min_distance)
    return torch.where(away, scores, torch.tensor(-float("inf"), dtype=scores.dtype)) if away.any() else scores


def _pool(subspace: Subspace, incumbents: np.ndarray, rng: np.random.RandomState, seeds: np.ndarray | None,
          cfg: CandidateSearchConfig) -> np.ndarray:
    continuous = subspace.continuous
    d = len(continuous)
    sobol = qmc.Sobol(d, scramble=True, seed=rng.randint(2**31 - 1)).random(cfg.n_candidates)
    parts = [sobol]
    centres = incumbents.reshape(-1, d)
    if seeds is not None and len(seeds):
        centres = np.concatenate([centres, seeds])
        parts.append(seeds)
    if len(centres) and cfg.n_local:
        base = centres[rng.randint(len(centres), size=cfg.n_local)]
        inactive = subspace.inactive(base)
        if inactive.any():  # a copy whose resampled choice activates a parameter starts it anywhere, not at 0
            base = np.where(inactive, rng.rand(*base.shape), base)
        scale = 10 ** rng.uniform(-2.5, -0.7, size=(cfg.n_local, 1))
        local = base + scale * rng.randn(cfg.n_local, d) * continuous
        for block in subspace.categorical:  # resample categories in a fifth of the copies
            flip = rng.rand(cfg.n_local) < 0.2
            local[flip, block] = rng.rand(int(flip.sum()), block.stop - block.start)
        parts.append(np.clip(local, 0.0, 1.0))
    if len(centres) and cfg.n_bound:
        base = centres[rng.randint(len(centres), size=cfg.n_bound)]
        move = (rng.rand(cfg.n_bound, d) < 0.5) & continuous
        parts.append(np.where(move, np.round(base), base))
    return np.concatenate(parts, axis=0)


def _refine(cache: ContextCache, acquisition: Acquisition, starts: np.ndarray, movable: np.ndarray,
            cfg: CandidateSearchConfig) -> np.ndarray:
    """Projected gradient ascent on the acquisition in the ``movable`` (n, d) coordinates, with unit-max-norm
    steps that shrink geometrically.

    Keeps the best point seen per start, so refinement can never make a candidate worse.
    """
    mask = torch.as_tensor(movable, dtype=torch.float32)
    x = torch.as_tensor(starts, dtype=torch.float32).clone()
    best_x = x.clone()
    best_val = torch.full((len(starts),), -float("inf"))
    step = cfg.refine_lr
    line_search = len(cfg.refine_scales) > 1
    for _ in range(cfg.refine_steps):
        x.requires_grad_(True)
        vals = score_points(cache, acquisition, x)[0]
        (grad,) = torch.autograd.grad(vals.sum(), x)
        with torch.no_grad():
            best_val = _keep_better(x, vals, best_x, best_val)
            grad = grad * mask
            scale = grad.abs().amax(-1, keepdim=True).clamp_min(1e-12)
            if line_search:
                x, vals = _line_search(cache, acquisition, x, step * grad / scale, cfg.refine_scales)
                best_val = _keep_better(x, vals, best_x, best_val)
            else:
                x = (x + step * grad / scale).clamp(0.0, 1.0)
        step *= 0.85
    if not line_search:  # a line search has scored its last points already
        with torch.no_grad():
            _keep_better(x, score_points(cache, acquisition, x)[0], best_x, best_val)
    return best_x.numpy().astype(np.float64)


def _keep_better(x: Tensor, vals: Tensor, best_x: Tensor, best_val: Tensor) -> Tensor:
    """Copy the rows of ``x`` whose ``vals`` beat ``best_val`` into ``best_x`` (in place); the new best values."""
    improved = vals > best_val
    best_x[improved] = x[improved]
    return torch.where(improved, vals, best_val)


def _line_search(cache: ContextCache, acquisition: Acquisition, x: Tensor, direction: Tensor,
                 scales: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """The best of ``x + s * direction`` (clipped to the cube) over ``scales`` per row of ``x`` (n, d), with its
    acquisition value, from one batched pass."""
    n, d = x.shape
    s = torch.tensor(scales, dtype=x.dtype)[:, None, None]
    trials = (x[None] + s * direction[None]).clamp(0.0, 1.0)  # (S, n, d)
    vals = score_points(cache, acquisition, trials.reshape(-1, d))[0].reshape(len(scales), n)
    best = vals.argmax(0)
    rows = torch.arange(n)
    return trials[best, rows], vals[best, rows]
