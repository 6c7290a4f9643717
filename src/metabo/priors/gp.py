"""Synthetic optimisation tasks drawn from a Gaussian-process prior with hyperpriors.

Each task has its own active dimension count, kernel (Matérn-1/2, 3/2, 5/2 or RBF), ARD lengthscales scaled with
sqrt(d), irrelevant dimensions, Kumaraswamy input warping, noise level and an additive trend (linear or a
quadratic bowl, as in many real response surfaces). Sampling is biased toward what BO needs:

* context sizes cover 0..max uniformly-ish (short studies are common, long ones must work);
* part of the context is placed near the best points seen so far, as a BO trajectory would be;
* half of the query points sit near the best context points, so the model learns the tail near the optimum.

Points chosen after seeing earlier values are sampled exactly from the GP conditional, by extending the Cholesky
factor of the earlier points (the leading block of a Cholesky factor does not change when rows are appended).
Multi-task batches (``n_related > 0``) add points of related past studies, the multi-task prior: study s is
``rho_s * f(x) + sqrt(1 - rho_s^2) * g_s(x)`` plus noise, where ``f`` is the target task (trend included) and
``g_s`` an independent draw from the same kernel, so related studies share structure to a degree ``rho_s`` that
the model must infer (some are unrelated, ``rho_s = 0``). Related points are space-filling, like a random past
sweep. Each study is standardised on its own, as serving does with past studies.

Convention: larger is better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class PriorConfig:
    max_dims: int = 16
    min_dims: int = 1
    max_active_dims: int | None = None  # defaults to max_dims
    dims_power: float = 1.0  # > 1 favours fewer active dimensions
    lengthscale_log_mean: float = math.log(0.25)
    lengthscale_log_std: float = 0.7
    irrelevant_prob: float = 0.25
    warp_prob: float = 0.4
    trend_prob: float = 0.35
    noise_log10_range: tuple[float, float] = (-6.0, -1.0)
    local_context_frac_max: float = 0.7
    local_query_frac: float = 0.5
    unrelated_prob: float = 0.15  # share of related studies that are independent of the target (rho = 0)
    weak_related_prob: float = 0.25  # rho ~ U(0, 0.6); otherwise rho ~ U(0.6, 1)


@dataclass
class TaskBatch:
    """A batch of tasks sharing context size C and query count Q (dimensions padded with zeros)."""

    x_ctx: Tensor  # (B, C, D)
    y_ctx: Tensor  # (B, C) raw values
    x_qry: Tensor  # (B, Q, D)
    y_qry: Tensor  # (B, Q) raw noisy values
    n_dims: Tensor  # (B,) active dimensions
    x_rel: Tensor | None = None  # (B, R, D) related studies' points
    y_rel: Tensor | None = None  # (B, R) their values, standardised per study
    rel_study: Tensor | None = None  # (B, R) study index 0..S-1 of each related point


def _kumaraswamy(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    x = x.clamp(1e-6, 1 - 1e-6)
    return 1 - (1 - x**a) ** b


def stationary_kernel(x1: Tensor, x2: Tensor, ls: Tensor, kind: Tensor) -> Tensor:
    """Stationary kernel with per-task ARD lengthscales; ``kind`` in {0: M1/2, 1: M3/2, 2: M5/2, 3: RBF}."""
    a = x1 / ls[:, None, :]
    b = x2 / ls[:, None, :]
    r2 = ((a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :] - 2 * a @ b.transpose(-1, -2)).clamp_min(0.0)
    r = (r2 + 1e-12).sqrt()
    k = kind[:, None, None]
    m12 = torch.exp(-r)
    s3 = math.sqrt(3) * r
    m32 = (1 + s3) * torch.exp(-s3)
    s5 = math.sqrt(5) * r
    m52 = (1 + s5 + s5 * s5 / 3) * torch.exp(-s5)
    rbf = torch.exp(-0.5 * r2)
    return torch.where(k == 0, m12, torch.where(k == 1, m32, torch.where(k == 2, m52, rbf)))


class GPPrior:
    """Samples batches of GP tasks; see module docstring."""

    def __init__(self, cfg: PriorConfig | None = None) -> None:
        self.cfg = cfg or PriorConfig()

    def sample(self, batch_size: int, n_ctx: int, n_qry: int, generator: torch.Generator, n_related: int = 0,
               n_related_studies: int = 1) -> TaskBatch:
        """``batch_size`` tasks with ``n_ctx`` context and ``n_qry`` query points each; with ``n_related > 0``,
        also that many points of ``n_related_studies`` related studies (split at random between them)."""
        cfg, g, B, D = self.cfg, generator, batch_size, self.cfg.max_dims
        dt = torch.float64

        def rand(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=g, dtype=dt)

        def randn(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=g, dtype=dt)

        # Active dimensions: positions are a random subset of the D slots (permutation augmentation).
        top = cfg.max_active_dims or D
        u = torch.rand(B, generator=g, dtype=dt) ** cfg.dims_power
        n_dims = (cfg.min_dims + torch.floor(u * (top - cfg.min_dims + 1))).long().clamp(cfg.min_dims, top)
        order = torch.argsort(rand(B, D), dim=1)
        active = torch.zeros(B, D, dtype=torch.bool)
        for i in range(B):
            active[i, order[i, : n_dims[i]]] = True
        relevant = active & (rand(B, D) > cfg.irrelevant_prob)
        no_relevant = ~relevant.any(1)
        relevant[no_relevant] = active[no_relevant]

        ls = torch.exp(cfg.lengthscale_log_mean + cfg.lengthscale_log_std * randn(B, D))
        ls = ls * n_dims.to(dt).sqrt()[:, None]
        ls = torch.where(relevant, ls, torch.full_like(ls, 1e6))  # inactive/irrelevant: flat
        kind = torch.randint(0, 4, (B,), generator=g)
        kind = torch.where(rand(B) < 0.15, torch.zeros_like(kind), kind.clamp_min(1))  # rough kernels are rarer
        noise_var = 10 ** (cfg.noise_log10_range[0] + (cfg.noise_log10_range[1] - cfg.noise_log10_range[0]) * rand(B) ** 2)
        warp = rand(B) < cfg.warp_prob
        warp_a = torch.where(warp[:, None], torch.exp(0.5 * randn(B, D)), torch.ones(B, D, dtype=dt))
        warp_b = torch.where(warp[:, None], torch.exp(0.5 * randn(B, D)), torch.ones(B, D, dtype=dt))

        def features(x: Tensor) -> Tensor:
            return _kumaraswamy(x, warp_a[:, None, :], warp_b[:, None, :])

        def mask_inactive(x: Tensor) -> Tensor:
            return torch.where(active[:, None, :], x, torch.zeros_like(x))

        # Stage A: space-filling part of the context.
        n_local = int(round(n_ctx * cfg.local_context_frac_max * float(rand(1)))) if n_ctx >= 4 else 0
        n_global = n_ctx - n_local
        x_a = mask_inactive(rand(B, n_global, D))
        jitter = 1e-8
        nugget = noise_var[:, None, None] + jitter
        k_aa = stationary_kernel(features(x_a), features(x_a), ls, kind) + nugget * torch.eye(n_global, dtype=dt)
        z_a = randn(B, n_global, 1)
        y_a = (torch.linalg.cholesky(k_aa) @ z_a)[..., 0] if n_global else torch.zeros(B, 0, dtype=dt)
        y_a = y_a + self._trend(x_a, active, g, B)

        # Stage B: local context around the best stage-A points, then queries; exact conditional sampling.
        x_b = self._near_best(x_a, y_a, n_local, g) if n_local else torch.zeros(B, 0, D, dtype=dt)
        x_b = mask_inactive(x_b)
        x_ctx = torch.cat([x_a, x_b], dim=1)
        n_qry_local = int(round(n_qry * cfg.local_query_frac)) if n_ctx >= 1 else 0
        x_q_local = self._near_best(x_a, y_a, n_qry_local, g) if n_qry_local else torch.zeros(B, 0, D, dtype=dt)
        x_q = mask_inactive(torch.cat([x_q_local, rand(B, n_qry - n_qry_local, D)], dim=1))

        x_rel = mask_inactive(rand(B, n_related, D))
        x_all = torch.cat([x_ctx, x_q, x_rel], dim=1)
        n_all = x_all.shape[1]
        k_all = stationary_kernel(features(x_all), features(x_all), ls, kind) + nugget * torch.eye(n_all, dtype=dt)
        chol = torch.linalg.cholesky(k_all)
        z = torch.cat([z_a, randn(B, n_all - n_global, 1)], dim=1)
        y_all = (chol @ z)[..., 0]
        trend_all = self._trend_cached
        y_all = y_all + self._trend_eval(x_all, trend_all)
        rel = None
        if n_related:
            y_all, y_base_rel = y_all[:, : n_all - n_related], y_all[:, n_all - n_related :]
            rel = self._related(x_rel, y_base_rel, n_related_studies,
                                lambda x: stationary_kernel(features(x), features(x), ls, kind),
                                noise_var, g)
            n_all -= n_related
        # Stage-A values are unchanged by construction (same leading Cholesky block and same z_a).
        # The overall scale of a task is arbitrary; unit spread keeps tiny contexts (C < 2) on a sane scale.
        y_all = y_all / y_all.std(dim=1, keepdim=True).clamp_min(1e-6) if n_all > 1 else y_all
        y_ctx, y_q = y_all[:, :n_ctx], y_all[:, n_ctx:]
        batch = TaskBatch(x_ctx.float(), y_ctx.float(), x_q.float(), y_q.float(), n_dims)
        if rel is not None:
            batch.x_rel, batch.y_rel, batch.rel_study = x_rel.float(), rel[0].float(), rel[1]
        return batch

    def _related(self, x_rel: Tensor, y_base: Tensor, n_studies: int, kernel, noise_var: Tensor,
                 g: torch.Generator) -> tuple[Tensor, Tensor]:
        """Values of related studies at ``x_rel`` given the target's values ``y_base`` there (module docstring)."""
        B, R, _ = x_rel.shape
        dt = torch.float64
        n_studies = max(1, min(n_studies, R))
        # Random study sizes: cut points of a random partition of R into n_studies non-empty parts.
        cuts = torch.sort(torch.randperm(R - 1, generator=g)[: n_studies - 1] + 1).values
        study = torch.bucketize(torch.arange(R), cuts, right=True).expand(B, R)
        same = study[:, :, None] == study[:, None, :]
        k = kernel(x_rel) * same + (noise_var[:, None, None] + 1e-8) * torch.eye(R, dtype=dt)
        indep = (torch.linalg.cholesky(k) @ torch.randn(B, R, 1, generator=g, dtype=dt))[..., 0]
        u = torch.rand(B, n_studies, generator=g, dtype=dt)
        kind = torch.rand(B, n_studies, generator=g, dtype=dt)
        rho = torch.where(kind < self.cfg.unrelated_prob, torch.zeros_like(u),
                          torch.where(kind < self.cfg.unrelated_prob + self.cfg.weak_related_prob, 0.6 * u, 0.6 + 0.4 * u))
        rho_pt = rho.gather(1, study)
        base = (y_base - y_base.mean(1, keepdim=True)) / y_base.std(1, keepdim=True).clamp_min(1e-6) if R > 1 else y_base
        y = rho_pt * base + (1 - rho_pt**2).sqrt() * indep
        return standardise_per_study(y, study), study


    # ------------------------------------------------------------------ helpers
    def _trend(self, x: Tensor, active: Tensor, g: torch.Generator, B: int) -> Tensor:
        """Draw this batch's trend parameters (cached for the later stages) and evaluate them on ``x``."""
        dt = torch.float64
        D = x.shape[-1]
        on = torch.rand(B, generator=g, dtype=dt) < self.cfg.trend_prob
        bowl = torch.rand(B, generator=g, dtype=dt) < 0.6
        w = torch.randn(B, D, generator=g, dtype=dt) * active
        centre = torch.rand(B, D, generator=g, dtype=dt)
        curv = torch.exp(torch.randn(B, D, generator=g, dtype=dt)) * active
        amp = torch.exp(torch.randn(B, generator=g, dtype=dt)) * on
        self._trend_cached = (bowl, w, centre, curv, amp)
        return self._trend_eval(x, self._trend_cached)

    @staticmethod
    def _trend_eval(x: Tensor, params: tuple[Tensor, ...]) -> Tensor:
        bowl, w, centre, curv, amp = params
        lin = (x * w[:, None, :]).sum(-1)
        quad = -(((x - centre[:, None, :]) ** 2) * curv[:, None, :]).sum(-1)  # maximum at centre
        return amp[:, None] * torch.where(bowl[:, None], quad, lin)

    @staticmethod
    def _near_best(x: Tensor, y: Tensor, n: int, g: torch.Generator) -> Tensor:
        """Points perturbed around the top few points of ``x`` (by ``y``), at random scales."""
        B, m, D = x.shape
        if m == 0:
            return torch.rand(B, n, D, generator=g, dtype=x.dtype)
        top = max(1, min(m, 1 + m // 8))
        best_idx = torch.topk(y, top, dim=1).indices  # (B, top)
        pick = best_idx.gather(1, torch.randint(0, top, (B, n), generator=g))
        base = x.gather(1, pick[..., None].expand(B, n, D))
        scale = 10 ** (-2.3 + 1.8 * torch.rand(B, n, 1, generator=g, dtype=x.dtype))
        return (base + scale * torch.randn(B, n, D, generator=g, dtype=x.dtype)).clamp(0.0, 1.0)


def standardise_per_study(y: Tensor, study: Tensor) -> Tensor:
    """Standardise ``y`` (B, R) within each study id of ``study`` (B, R): mean 0, std 1 (single points: 0)."""
    out = torch.zeros_like(y)
    for s in torch.unique(study):
        m = study == s
        n = m.sum(1, keepdim=True).clamp_min(1)
        mean = (y * m).sum(1, keepdim=True) / n
        var = (((y - mean) * m) ** 2).sum(1, keepdim=True) / (n - 1).clamp_min(1)
        std = torch.where(var > 1e-12, var.sqrt(), torch.ones_like(var))
        out = torch.where(m, (y - mean) / std, out)
    return out
