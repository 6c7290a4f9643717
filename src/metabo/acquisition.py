"""Acquisition functions from the bar distribution and their optimisation over the unit cube.

Candidate pool: a scrambled Sobol set plus Gaussian perturbations of the best observed points (categorical
coordinates are resampled at random in the perturbed copies). All candidates are scored against one cached
context encoding; the best few are refined by gradient ascent through the network (continuous coordinates only),
snapped to admissible values, re-scored, and the best wins. Candidates within ``min_distance`` (max-norm in
the unit cube) of a point already evaluated or pending are skipped: on a deterministic objective such a point
teaches nothing, yet its predictive spread (the prior's observation noise) keeps its expected improvement above
that of unexplored regions, so without the rule the search can stall on its incumbent. Optionally EI and PI
measure improvement beyond the incumbent's value plus ``improvement_margin`` predictive standard deviations at
the incumbent (the model's noise estimate there), so a neighbour of the incumbent earns no credit for noise
alone (off by default: see ``TNPSampler``). Pending points (trials still running) enter the
context with their predicted mean as a fantasy value ("kriging believer"), so parallel workers spread out.

With related past studies (``metabo.related``) their points join the context under their own task slots, and
their best points seed the local part of the pool. (The first trials of such a study may instead come from a
zero-shot portfolio: see ``TNPSampler``'s ``n_warm_trials``.)

With ``bound_candidates`` a parameter's bounds count as values of their own: the best points' continuous
coordinates within ``bound_snap`` of a bound are projected onto it as extra candidates, and a candidate on a bound
is never "near" a seen point off that bound (or the reverse). Bounds are often qualitatively different settings
(glmnet's alpha 0 is ridge, 1 is lasso), and the min-distance rule would otherwise bar the search from a corner
optimum once it has evaluated a point a hair inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
from scipy.spatial.distance import cdist
from scipy.stats import qmc
from torch import Tensor

from metabo.model.transformer import ContextCache, TNPModel
from metabo.related import RelatedContext, concat_context

AcquisitionKind = Literal["ei", "pi", "ucb", "nap"]


@dataclass
class AcquisitionConfig:
    kind: AcquisitionKind = "ei"
    n_sobol: int = 512
    n_local: int = 256
    n_incumbents: int = 5
    n_refine: int = 4
    refine_steps: int = 2
    refine_lr: float = 0.05
    ucb_beta: float = 2.0
    budget_fraction: float = 0.0  # t/T, the input of a learned (NAP) acquisition head
    min_distance: float = 0.01  # skip candidates this close (max-norm) to evaluated or pending points; 0: never
    improvement_margin: float = 0.0  # EI/PI count improvement beyond best + this many predictive sds at the best
    bound_candidates: bool = False  # bounds are distinct values: project near-bound incumbents onto them
    bound_snap: float = 0.05  # with bound_candidates: incumbent coordinates this close to a bound are projected


@dataclass
class Suggestion:
    """The chosen encoded point with its predictive logits and acquisition value."""

    x: np.ndarray
    logits: Tensor
    acquisition: float


def acquisition_values(model: TNPModel, logits: Tensor, best: float | None, cfg: AcquisitionConfig,
                       ei_k: Tensor | None = None) -> Tensor:
    """Acquisition per candidate on a log-like scale (larger is better); ``ei_k`` caches EI's per-bucket terms.

    ``best=None`` (no observation of the study's own yet) scores by the predicted mean. The learned acquisition
    (``"nap"``) is not a function of the logits: see ``AcquisitionOptimizer``.
    """
    if best is None:
        return model.bar.mean(logits)
    if cfg.kind == "ei":
        return model.bar.log_expected_improvement(logits, best, ei_k)
    if cfg.kind == "pi":
        return torch.log(model.bar.probability_of_improvement(logits, best).clamp_min(1e-38))
    if cfg.kind == "ucb":
        return model.bar.upper_confidence_bound(logits, cfg.ucb_beta)
    raise ValueError(f"unknown acquisition {cfg.kind!r}; choose from 'ei', 'pi', 'ucb' (or 'nap' with a NAP model)")


class AcquisitionOptimizer:
    """Maximises an acquisition function of a pretrained model over the encoded unit cube.

    Args:
        model: the pretrained network (its parameters are never updated here).
        continuous: boolean mask over encoded coordinates that may be refined by gradients.
        snap: projection of encoded rows onto admissible points (see ``SearchSpaceEncoder.snap``).
        categorical: slices of one-hot blocks.
        cfg: pool sizes and refinement settings.
    """

    def __init__(
        self,
        model: TNPModel,
        continuous: np.ndarray,
        snap: Callable[[np.ndarray], np.ndarray],
        categorical: list[slice],
        cfg: AcquisitionConfig | None = None,
    ) -> None:
        self.model = model
        self.continuous = np.asarray(continuous, dtype=bool)
        self.snap = snap
        self.categorical = categorical
        self.cfg = cfg or AcquisitionConfig()

    # ------------------------------------------------------------------ public
    @torch.no_grad()
    def encode(self, x_ctx: np.ndarray, y_ctx: np.ndarray, x_pending: np.ndarray | None = None,
               related: RelatedContext | None = None) -> ContextCache:
        """Encode the context (related studies' points first, if any), adding pending points with their
        predicted mean as fantasies."""
        x_all, y_all, slot = concat_context(related, x_ctx, y_ctx)
        x = torch.as_tensor(x_all, dtype=torch.float32)[None]
        y = torch.as_tensor(y_all, dtype=torch.float32)[None]
        task = None if slot is None else torch.as_tensor(slot)[None]
        cache = self.model.encode_context(x, y, ctx_task=task)
        if x_pending is not None and len(x_pending):
            xp = torch.as_tensor(x_pending, dtype=torch.float32)[None]
            fantasy = self.model.bar.mean(self.model.predict_logits(cache, xp))
            if task is not None:
                task = torch.cat([task, torch.zeros(1, xp.shape[1], dtype=task.dtype)], 1)
            cache = self.model.encode_context(torch.cat([x, xp], 1), torch.cat([y, fantasy], 1), ctx_task=task)
        return cache

    def optimize(self, cache: ContextCache, x_ctx: np.ndarray, y_ctx: np.ndarray, rng: np.random.RandomState,
                 seeds: np.ndarray | None = None, x_seen: np.ndarray | None = None) -> Suggestion:
        """Return the best candidate found for the encoded context.

        ``seeds`` are extra points to search around (the best points of related studies). ``x_seen`` are the
        points evaluated or pending (default ``x_ctx``): candidates within ``cfg.min_distance`` of one are
        skipped, unless every candidate is.
        """
        cfg = self.cfg
        x_seen = x_ctx if x_seen is None else x_seen
        best, ei_k = self._incumbent(cache, x_ctx, y_ctx)
        pool = self.snap(self._pool(x_ctx, y_ctx, rng, seeds))
        with torch.no_grad():
            scores = self._score(cache, torch.as_tensor(pool, dtype=torch.float32), best, ei_k)
        scores = self._skip_seen(scores, pool, x_seen)
        order = torch.argsort(scores, descending=True)
        starts = pool[order[: cfg.n_refine].numpy()]
        refined = self._refine(cache, starts, best, ei_k) if self.continuous.any() and cfg.refine_steps > 0 else starts
        finalists = self.snap(np.concatenate([refined, starts[:1]], axis=0))
        with torch.no_grad():
            final_scores, logits = self._evaluate(cache, torch.as_tensor(finalists, dtype=torch.float32), best, ei_k)
        final_scores = self._skip_seen(final_scores, finalists, x_seen)
        i = int(torch.argmax(final_scores))
        return Suggestion(finalists[i], logits[i], float(final_scores[i]))

    def _skip_seen(self, scores: Tensor, candidates: np.ndarray, x_seen: np.ndarray) -> Tensor:
        """``scores`` with candidates near a seen point set to -inf (unchanged if that would leave none)."""
        if self.cfg.min_distance <= 0 or not len(x_seen):
            return scores
        if self.cfg.bound_candidates:  # a bound flag per coordinate: on/off-bound pairs are then 1 apart
            candidates, x_seen = self._with_bound_flags(candidates), self._with_bound_flags(x_seen)
        # cdist keeps this (Q, n_seen), not (Q, n_seen, d): every trial of the study counts, not just the context
        nearest = cdist(candidates, x_seen, "chebyshev").min(1)
        away = torch.as_tensor(nearest >= self.cfg.min_distance)
        return torch.where(away, scores, torch.tensor(-float("inf"), dtype=scores.dtype)) if away.any() else scores

    def _with_bound_flags(self, x: np.ndarray) -> np.ndarray:
        """``x`` (n, d) with a column per continuous coordinate: 1 where it lies on a bound, else 0."""
        cont = x[:, self.continuous]
        return np.concatenate([x, ((cont == 0.0) | (cont == 1.0)).astype(np.float64)], axis=1)

    # ------------------------------------------------------------------ internals
    def suggestion_at(self, cache: ContextCache, x_ctx: np.ndarray, y_ctx: np.ndarray, x: np.ndarray) -> Suggestion:
        """A point chosen elsewhere (a warm-start portfolio), with its logits and acquisition value."""
        best, ei_k = self._incumbent(cache, x_ctx, y_ctx)
        with torch.no_grad():
            scores, logits = self._evaluate(cache, torch.as_tensor(x[None], dtype=torch.float32), best, ei_k)
        return Suggestion(np.asarray(x), logits[0], float(scores[0]))

    def _incumbent(self, cache: ContextCache, x_ctx: np.ndarray, y_ctx: np.ndarray
                   ) -> tuple[float | None, Tensor | None]:
        """The improvement threshold: the best own value (``None`` before any) plus ``improvement_margin``
        predictive standard deviations at the best point; for EI also its cached per-bucket improvement terms."""
        best = float(np.max(y_ctx)) if len(y_ctx) else None
        if best is not None and self.cfg.improvement_margin > 0 and self.cfg.kind in ("ei", "pi"):
            x_best = torch.as_tensor(x_ctx[int(np.argmax(y_ctx))][None], dtype=torch.float32)
            with torch.no_grad():
                logits = self.model.head(self.model.candidate_features(cache, x_best[None]))[0]
                best += self.cfg.improvement_margin * float(self.model.bar.variance(logits).sqrt()[0])
        ei_k = self.model.bar.improvement_per_bucket(best) if self.cfg.kind == "ei" and best is not None else None
        return best, ei_k

    def _evaluate(self, cache: ContextCache, x: Tensor, best: float | None, ei_k: Tensor | None
                  ) -> tuple[Tensor, Tensor]:
        """Acquisition values and bucket logits of candidates ``x`` (Q, d)."""
        features = self.model.candidate_features(cache, x[None])
        logits = self.model.head(features)[0]
        if self.cfg.kind == "nap":
            return self.model.acquisition_scores(features, self.cfg.budget_fraction)[0], logits
        return acquisition_values(self.model, logits, best, self.cfg, ei_k), logits

    def _score(self, cache: ContextCache, x: Tensor, best: float | None, ei_k: Tensor | None) -> Tensor:
        return self._evaluate(cache, x, best, ei_k)[0]

    def _pool(self, x_ctx: np.ndarray, y_ctx: np.ndarray, rng: np.random.RandomState,
              seeds: np.ndarray | None = None) -> np.ndarray:
        cfg, d = self.cfg, len(self.continuous)
        sobol = qmc.Sobol(d, scramble=True, seed=rng.randint(2**31 - 1)).random(cfg.n_sobol)
        parts = [sobol]
        centres = x_ctx[np.argsort(-np.asarray(y_ctx))[: cfg.n_incumbents]] if len(y_ctx) else x_ctx[:0]
        if seeds is not None and len(seeds):
            centres = np.concatenate([centres.reshape(-1, d), seeds])
            parts.append(seeds)
        if len(centres) and cfg.n_local:
            base = centres[rng.randint(len(centres), size=cfg.n_local)]
            scale = 10 ** rng.uniform(-2.5, -0.7, size=(cfg.n_local, 1))
            local = base + scale * rng.randn(cfg.n_local, d) * self.continuous
            for sl in self.categorical:  # resample categories in a fifth of the copies
                flip = rng.rand(cfg.n_local) < 0.2
                local[flip, sl] = rng.rand(int(flip.sum()), sl.stop - sl.start)
            parts.append(np.clip(local, 0.0, 1.0))
        if cfg.bound_candidates and len(centres):
            near = self.continuous & ((centres < cfg.bound_snap) | (centres > 1.0 - cfg.bound_snap))
            parts.append(np.where(near, np.round(centres), centres))
        return np.concatenate(parts, axis=0)

    def _refine(self, cache: ContextCache, starts: np.ndarray, best: float | None, ei_k: Tensor | None) -> np.ndarray:
        """Projected gradient ascent on the acquisition, with unit-max-norm steps that shrink geometrically.

        Keeps the best point seen per start, so refinement can never make a candidate worse.
        """
        cfg = self.cfg
        mask = torch.as_tensor(self.continuous, dtype=torch.float32)
        x = torch.as_tensor(starts, dtype=torch.float32).clone()
        best_x = x.clone()
        best_val = torch.full((len(starts),), -float("inf"))
        step = cfg.refine_lr
        for _ in range(cfg.refine_steps):
            x.requires_grad_(True)
            vals = self._score(cache, x, best, ei_k)
            (grad,) = torch.autograd.grad(vals.sum(), x)
            with torch.no_grad():
                improved = vals > best_val
                best_val = torch.where(improved, vals, best_val)
                best_x[improved] = x[improved]
                grad = grad * mask
                scale = grad.abs().amax(-1, keepdim=True).clamp_min(1e-12)
                x = (x + step * grad / scale).clamp(0.0, 1.0)
            step *= 0.85
        with torch.no_grad():
            vals = self._score(cache, x, best, ei_k)
            improved = vals > best_val
            best_x[improved] = x[improved]
        return best_x.numpy().astype(np.float64)
