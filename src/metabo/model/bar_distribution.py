"""Bar ("Riemann") distribution with full-support half-normal tails.

The model outputs logits over ``K`` buckets whose borders live on the normalised objective scale. Inner buckets
have uniform density; the first and last bucket are half-normal tails whose scale is the width of that bucket, so
the distribution has support on the whole real line and no target is ever impossible. Likelihood, mean, variance,
EI (and log-EI), PI and UCB are all computed exactly from this piecewise density.

Convention: larger is better (the sampler flips minimisation problems before they reach the model).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _phi(z: Tensor) -> Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _Phi(z: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-z / _SQRT2)


def _phi_minus_zq(z: Tensor) -> Tensor:
    """phi(z) - z Q(z) for z >= 0 without cancellation: phi(z) (1 - z sqrt(pi/2) erfcx(z / sqrt 2)), in float64."""
    z64 = z.double()
    inner = (1 - z64 * math.sqrt(math.pi / 2) * torch.special.erfcx(z64 / _SQRT2)).clamp_min(0.0)
    return (_phi(z64) * inner).to(z.dtype)


def _Q(z: Tensor) -> Tensor:
    """Upper tail 1 - Phi(z), accurate for large z."""
    return 0.5 * torch.erfc(z / _SQRT2)


class BarDistribution(torch.nn.Module):
    """Piecewise density over ``K`` buckets given by ``K + 1`` increasing borders."""

    def __init__(self, borders: Tensor) -> None:
        super().__init__()
        borders = torch.as_tensor(borders, dtype=torch.float32)
        if borders.ndim != 1 or borders.numel() < 4 or not bool((borders[1:] > borders[:-1]).all()):
            raise ValueError("borders must be a strictly increasing 1-D tensor with at least 4 entries")
        self.register_buffer("borders", borders)

    @property
    def num_buckets(self) -> int:
        return self.borders.numel() - 1

    @property
    def widths(self) -> Tensor:
        return self.borders[1:] - self.borders[:-1]

    def _tail_scales(self) -> tuple[Tensor, Tensor]:
        w = self.widths
        return w[0], w[-1]

    # ------------------------------------------------------------------ likelihood
    def log_prob(self, logits: Tensor, y: Tensor) -> Tensor:
        """Log density of targets ``y`` (shape ``logits.shape[:-1]``), in at least float32 (logits from a
        bfloat16 forward pass are promoted first)."""
        log_p = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
        b = self.borders.to(y.dtype)
        k = self.num_buckets
        idx = torch.clamp(torch.searchsorted(b, y.contiguous(), right=True) - 1, 0, k - 1)
        log_bucket = torch.gather(log_p, -1, idx.unsqueeze(-1)).squeeze(-1)
        inner = log_bucket - torch.log(self.widths.to(y.dtype))[idx]
        s_lo, s_hi = self._tail_scales()
        # Half-normal tails: density 2*phi(d/s)/s, mass of the bucket spread over the half line.
        d_lo = (b[1] - y).clamp_min(0.0)
        d_hi = (y - b[-2]).clamp_min(0.0)
        tail_lo = log_p[..., 0] + math.log(2) - _LOG_SQRT_2PI - torch.log(s_lo) - 0.5 * (d_lo / s_lo) ** 2
        tail_hi = log_p[..., -1] + math.log(2) - _LOG_SQRT_2PI - torch.log(s_hi) - 0.5 * (d_hi / s_hi) ** 2
        out = torch.where(idx == 0, tail_lo, inner)
        return torch.where(idx == k - 1, tail_hi, out)

    def nll(self, logits: Tensor, y: Tensor) -> Tensor:
        return -self.log_prob(logits, y)

    # ------------------------------------------------------------------ moments
    def bucket_moments(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Mean and second moment of y within each bucket (tails included)."""
        b = self.borders.to(dtype)
        lo, hi = b[:-1], b[1:]
        mean = (lo + hi) / 2
        second = (lo * lo + lo * hi + hi * hi) / 3
        s_lo, s_hi = (s.to(dtype) for s in self._tail_scales())
        m_half = s_lo * _SQRT_2_OVER_PI
        mean = mean.clone()
        second = second.clone()
        mean[0] = b[1] - m_half
        second[0] = b[1] ** 2 - 2 * b[1] * m_half + s_lo**2
        m_half_hi = s_hi * _SQRT_2_OVER_PI
        mean[-1] = b[-2] + m_half_hi
        second[-1] = b[-2] ** 2 + 2 * b[-2] * m_half_hi + s_hi**2
        return mean, second

    def mean(self, logits: Tensor) -> Tensor:
        p = torch.softmax(logits, dim=-1)
        m, _ = self.bucket_moments(p.dtype)
        return p @ m

    def variance(self, logits: Tensor) -> Tensor:
        p = torch.softmax(logits, dim=-1)
        m, s = self.bucket_moments(p.dtype)
        mu = p @ m
        return (p @ s - mu * mu).clamp_min(1e-12)

    # ------------------------------------------------------------------ acquisition
    def expected_improvement(self, logits: Tensor, best: Tensor | float) -> Tensor:
        """E[max(y - best, 0)] under the bar distribution; ``best`` broadcasts against the batch shape."""
        return torch.exp(self.log_expected_improvement(logits, best))

    def improvement_per_bucket(self, best: Tensor | float, dtype: torch.dtype = torch.float32) -> Tensor:
        """E[max(y - best, 0) | y in bucket k] * 1, for every bucket: shape ``best.shape + (K,)``."""
        b = self.borders.to(dtype)
        best_t = torch.as_tensor(best, dtype=dtype, device=b.device).unsqueeze(-1)
        lo, hi = b[:-1], b[1:]
        width = hi - lo
        above = (lo + hi) / 2 - best_t  # best <= lo
        inside = (hi - best_t).clamp_min(0.0) ** 2 / (2 * width)  # lo < best < hi
        ei = torch.where(best_t <= lo, above, inside)
        s_lo, s_hi = (s.to(dtype) for s in self._tail_scales())
        # Upper tail: y = b[-2] + |N(0, s^2)|.
        c = best_t[..., 0] - b[-2]
        zc = c.clamp_min(0.0) / s_hi
        ei_hi = torch.where(c <= 0, -c + s_hi * _SQRT_2_OVER_PI, 2 * s_hi * _phi_minus_zq(zc))
        # Lower tail: y = b[1] - |N(0, s^2)|.
        c_lo = (b[1] - best_t[..., 0]).clamp_min(0.0)
        z_lo = c_lo / s_lo
        ei_lo = c_lo * (2 * _Phi(z_lo) - 1) - 2 * s_lo * (1 / math.sqrt(2 * math.pi) - _phi(z_lo))
        return torch.cat([ei_lo.unsqueeze(-1), ei[..., 1:-1], ei_hi.unsqueeze(-1)], dim=-1).clamp_min(0.0)

    def log_expected_improvement(self, logits: Tensor, best: Tensor | float, ei_k: Tensor | None = None) -> Tensor:
        """log EI in closed form (``ei_k``: ``improvement_per_bucket(best)``, if already computed).

        Fast path: EI = softmax(logits) . ei_k, one exponential pass. Rows where that underflows (the incumbent
        far above all predicted mass) are recomputed in log space, with the asymptotic Gaussian tail integral
        beyond the upper border.
        """
        dtype = logits.dtype
        ei_k = self.improvement_per_bucket(best, dtype) if ei_k is None else ei_k.to(dtype)
        shifted = logits - logits.max(-1, keepdim=True).values.detach()
        e = torch.exp(shifted)
        num = (e * ei_k).sum(-1)
        log_ei = torch.log(num.clamp_min(torch.finfo(dtype).tiny)) - torch.log(e.sum(-1))
        tiny = num <= torch.finfo(dtype).tiny * 1e6
        if not bool(tiny.any()):
            return log_ei
        # Only the underflowing rows take the slow path (often a handful of a large candidate pool).
        batch, k = tiny.shape, logits.shape[-1]
        rows = tiny.reshape(-1).nonzero(as_tuple=True)[0]
        log_p = torch.log_softmax(logits.reshape(-1, k)[rows], dim=-1)
        ei_rows = ei_k.expand(batch + (k,)).reshape(-1, k)[rows]
        slow = torch.logsumexp(log_p + torch.log(ei_rows.clamp_min(torch.finfo(dtype).tiny)), dim=-1)
        b = self.borders.to(torch.float64)
        s_hi = self._tail_scales()[1].to(torch.float64)
        best_rows = torch.as_tensor(best, dtype=torch.float64).expand(batch).reshape(-1)[rows]
        z = ((best_rows - b[-2]) / s_hi).clamp_min(0.0)
        # Exact log of 2 s (phi(z) - z Q(z)) = log 2s + log phi(z) + log1p(-z sqrt(pi/2) erfcx(z/sqrt2)), in float64.
        inner = (1 - z * math.sqrt(math.pi / 2) * torch.special.erfcx(z / _SQRT2)).clamp_min(1e-300)
        log_tail = (log_p[..., -1].double() + math.log(2) + torch.log(s_hi) - 0.5 * z * z - _LOG_SQRT_2PI
                    + torch.log(inner)).to(dtype)
        slow = torch.where(z > 6, log_tail, slow)  # every other bucket contributes exactly zero there
        return log_ei.reshape(-1).index_put((rows,), slow).reshape(batch)

    def probability_of_improvement(self, logits: Tensor, best: Tensor | float) -> Tensor:
        p = torch.softmax(logits, dim=-1)
        dtype = p.dtype
        b = self.borders.to(dtype)
        best_t = torch.as_tensor(best, dtype=dtype, device=p.device).unsqueeze(-1)
        lo, hi = b[:-1], b[1:]
        frac = ((hi - best_t) / (hi - lo)).clamp(0.0, 1.0)  # (..., K) by best's shape, broadcast over p below
        s_lo, s_hi = (s.to(dtype) for s in self._tail_scales())
        c_hi = (best_t[..., 0] - b[-2]).clamp_min(0.0)
        frac[..., -1] = 2 * _Q(c_hi / s_hi)
        c_lo = (b[1] - best_t[..., 0]).clamp_min(0.0)
        frac[..., 0] = torch.where(best_t[..., 0] >= b[1], torch.zeros_like(c_lo), 2 * _Phi(c_lo / s_lo) - 1)
        return (p * frac).sum(-1)

    def upper_confidence_bound(self, logits: Tensor, beta: float = 2.0) -> Tensor:
        return self.mean(logits) + beta * self.variance(logits).sqrt()

    def quantile(self, logits: Tensor, u: Tensor) -> Tensor:
        """Values (..., S) at the probabilities ``u`` (S,) in (0, 1): the inverse CDF, differentiable in the
        logits, so fixed (quasi-random) ``u`` give samples that move smoothly with the prediction."""
        p = torch.softmax(logits, dim=-1)
        dtype = p.dtype
        b = self.borders.to(dtype)
        cum = torch.cumsum(p, dim=-1)
        u = u.to(dtype).clamp(1e-6, 1 - 1e-6).expand(logits.shape[:-1] + u.shape[-1:])
        k = torch.searchsorted(cum.detach().contiguous(), u.contiguous()).clamp_max(self.num_buckets - 1)
        p_k = torch.gather(p, -1, k)
        below = torch.gather(cum, -1, k) - p_k
        p_k = p_k.clamp_min(torch.finfo(dtype).tiny)
        frac = ((u - below) / p_k).clamp(1e-6, 1 - 1e-6)  # position inside bucket k
        inner = b[k] + frac * (b[k + 1] - b[k])
        s_lo, s_hi = (s.to(dtype) for s in self._tail_scales())
        lowest = k == 0
        z = torch.special.ndtri(torch.where(lowest, 1 - frac / 2, (1 + frac) / 2))  # |N(0, 1)| quantile in a tail
        lower = b[1] - s_lo * z  # y = b[1] - |N(0, s_lo^2)|
        upper = b[-2] + s_hi * z  # y = b[-2] + |N(0, s_hi^2)|
        return torch.where(lowest, lower, torch.where(k == self.num_buckets - 1, upper, inner))

    def cdf(self, logits: Tensor, y: Tensor | float) -> Tensor:
        """P(Y <= y)."""
        p_above = self.probability_of_improvement(logits, y)
        return 1.0 - p_above
