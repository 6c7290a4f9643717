"""Objective normalisation shared by training and serving.

The model always sees objective values standardised by the statistics of the *context* (never of the query
points), with larger meaning better. Serving adds an optional Yeo-Johnson power transform before that step so
heavy-tailed or badly scaled objectives look like the prior's, and optionally compresses the worse half of the
values logarithmically toward the median, so a few very bad values (a plateau of failed configurations, say)
do not squeeze the differences among the good ones below the bar distribution's resolution, or blends them with
their rank-based normal scores for the same reason. Every step has an exact inverse.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import norm, rankdata
from torch import Tensor

LAMBDA_BOUND = 3.0


def context_loc_scale(y_ctx: Tensor) -> tuple[Tensor, Tensor]:
    """Location and scale of each row of ``y_ctx`` (B, C) along the context axis.

    C >= 2: mean and standard deviation (scale 1 where the values are all equal); C == 1: the value and 1;
    C == 0: 0 and 1.
    """
    n = y_ctx.shape[-1]
    shape = y_ctx.shape[:-1] + (1,)
    if n == 0:
        return torch.zeros(shape, dtype=y_ctx.dtype), torch.ones(shape, dtype=y_ctx.dtype)
    loc = y_ctx.mean(-1, keepdim=True)
    if n == 1:
        return loc, torch.ones_like(loc)
    scale = y_ctx.std(-1, keepdim=True)
    return loc, torch.where(scale > 1e-12, scale, torch.ones_like(scale))


def yeojohnson(z: np.ndarray, lmbdas: np.ndarray) -> np.ndarray:
    """Yeo-Johnson transform of ``z`` (n,) for each of ``lmbdas`` (k,), shape (k, n)."""
    z = np.asarray(z, dtype=np.float64)[None, :]
    lm = np.asarray(lmbdas, dtype=np.float64)[:, None]
    pos = z >= 0
    log_pos = np.log1p(np.where(pos, z, 0.0))
    log_neg = np.log1p(np.where(pos, 0.0, -z))
    near0, near2 = np.abs(lm) < 1e-10, np.abs(lm - 2) < 1e-10
    with np.errstate(divide="ignore", invalid="ignore"):
        t_pos = np.where(near0, log_pos, np.expm1(lm * log_pos) / np.where(near0, 1.0, lm))
        t_neg = np.where(near2, -log_neg, -np.expm1((2 - lm) * log_neg) / np.where(near2, 1.0, 2 - lm))
    return np.where(pos, t_pos, t_neg)


def _yeojohnson_llf(z: np.ndarray, lmbdas: np.ndarray) -> np.ndarray:
    t = yeojohnson(z, lmbdas)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        var = t.var(axis=1)
        llf = -0.5 * len(z) * np.log(var) + (lmbdas - 1) * np.sum(np.sign(z) * np.log1p(np.abs(z)))
    return np.where(np.isfinite(llf), llf, -np.inf)


def fit_yeojohnson_lambda(z: np.ndarray) -> float | None:
    """Maximum-likelihood Yeo-Johnson lambda in [-3, 3] by a coarse then a fine vectorised grid search.

    Grid search instead of scipy's scalar optimiser: it costs well under a millisecond for a few hundred
    values (scipy's per-call overhead was a quarter of a suggestion's time), and its 0.005 resolution is far
    finer than the lambda's sampling error at these sample sizes.
    """
    coarse = np.linspace(-LAMBDA_BOUND, LAMBDA_BOUND, 121)
    llf = _yeojohnson_llf(z, coarse)
    if not np.isfinite(llf).any():
        return None
    centre = coarse[int(np.argmax(llf))]
    fine = np.clip(centre + np.linspace(-0.05, 0.05, 21), -LAMBDA_BOUND, LAMBDA_BOUND)
    return float(fine[int(np.argmax(_yeojohnson_llf(z, fine)))])


class ObjectiveTransform:
    """Per-study map from raw objective values to the model's scale, and back.

    Args:
        maximize: whether larger raw values are better.
        power: apply a Yeo-Johnson transform fitted on the observed values first.
        compress_worse: after standardising, map values ``t`` below the median ``m`` to ``m - log1p(m - t)``.
        quantile_weight: after standardising, replace ``t`` by ``w * q(t) + (1 - w) * t``, where ``q`` maps the
            fitted values to their normal scores (mid-ranks) and interpolates linearly between them (and beyond
            the ends, so the map stays increasing and invertible). Ranks ignore magnitudes, so a few very bad
            values cannot squash the good ones together.
        clip_worse: if positive, first soft-clip the raw values more than this many robust standard deviations
            (interquartile range / 1.349) worse than their median: beyond that threshold ``c`` a value ``v`` maps
            to ``c - r * log1p((c - v) / r)``. A plateau of failures then neither drives the Yeo-Johnson fit nor
            inflates the standard deviation that the good values are measured in.
    """

    def __init__(self, maximize: bool, power: bool = True, compress_worse: bool = False,
                 quantile_weight: float = 0.0, clip_worse: float = 0.0) -> None:
        if not 0.0 <= quantile_weight <= 1.0:
            raise ValueError(f"quantile_weight must lie in [0, 1], got {quantile_weight}")
        if not clip_worse >= 0.0:
            raise ValueError(f"clip_worse must be >= 0 (0 is off), got {clip_worse}")
        self.clip_worse = clip_worse
        self.clip_at = -np.inf
        self.clip_scale = 1.0
        self.sign = 1.0 if maximize else -1.0
        self.power = power
        self.compress_worse = compress_worse
        self.quantile_weight = quantile_weight
        self.knots_t = np.zeros(0)
        self.knots_q = np.zeros(0)
        self.median = 0.0
        self.lmbda: float | None = None
        self.shift = 0.0
        self.spread = 1.0
        self.loc = 0.0
        self.scale = 1.0

    def fit(self, values: np.ndarray) -> "ObjectiveTransform":
        v = self.sign * np.asarray(values, dtype=np.float64)
        self.clip_at, self.clip_scale = -np.inf, 1.0
        if self.clip_worse > 0 and v.size >= 4:
            q25, q50, q75 = np.percentile(v, [25, 50, 75])
            robust_sd = (q75 - q25) / 1.349
            if robust_sd > 1e-300:
                self.clip_at, self.clip_scale = float(q50 - self.clip_worse * robust_sd), float(robust_sd)
        v = self._soft_clip(v)
        # Pre-standardise so Yeo-Johnson's lambda search is well conditioned whatever the raw scale.
        self.shift = float(np.median(v)) if v.size else 0.0
        spread = float(np.std(v)) if v.size > 1 else 1.0
        self.spread = spread if spread > 1e-300 else 1.0
        z = (v - self.shift) / self.spread
        if self.power and v.size >= 3 and np.ptp(z) > 0:
            self.lmbda = fit_yeojohnson_lambda(z)
        t = self._forward_power(z)
        loc, scale = context_loc_scale(torch.as_tensor(t)[None])
        self.loc, self.scale = float(loc), float(scale)
        t = (t - self.loc) / self.scale
        self.median = float(np.median(t)) if t.size else 0.0
        if self.quantile_weight > 0 and t.size and np.ptp(t) > 0:
            self.knots_t, self.knots_q = _normal_score_knots(t)
        return self

    def _soft_clip(self, v: np.ndarray) -> np.ndarray:
        return _log_compress_below(v, self.clip_at, self.clip_scale)

    def _unclip(self, v: np.ndarray) -> np.ndarray:
        return _log_expand_below(v, self.clip_at, self.clip_scale)

    def _forward_power(self, z: np.ndarray) -> np.ndarray:
        if self.lmbda is None:
            return z
        z = np.asarray(z, dtype=np.float64)
        return yeojohnson(z.reshape(-1), np.array([self.lmbda]))[0].reshape(z.shape)

    def _inverse_power(self, t: np.ndarray) -> np.ndarray:
        if self.lmbda is None:
            return t
        lm = self.lmbda
        t = np.asarray(t, dtype=np.float64)
        out = np.empty_like(t)
        pos = t >= 0
        with np.errstate(all="ignore"):
            if abs(lm) > 1e-12:
                out[pos] = np.power(np.maximum(t[pos] * lm + 1, 0.0), 1 / lm) - 1
            else:
                out[pos] = np.expm1(t[pos])
            if abs(lm - 2) > 1e-12:
                out[~pos] = 1 - np.power(np.maximum(-(2 - lm) * t[~pos] + 1, 0.0), 1 / (2 - lm))
            else:
                out[~pos] = -np.expm1(-t[~pos])
        return out

    def transform(self, values: np.ndarray) -> np.ndarray:
        z = (self._soft_clip(self.sign * np.asarray(values, dtype=np.float64)) - self.shift) / self.spread
        t = (self._forward_power(z) - self.loc) / self.scale
        if len(self.knots_t):
            w = self.quantile_weight
            t = w * _interp_linear_ends(t, self.knots_t, self.knots_q) + (1 - w) * t
        if self.compress_worse:
            t = _log_compress_below(t, self.median, 1.0)
        return t

    def inverse(self, normalised: np.ndarray) -> np.ndarray:
        t = np.asarray(normalised, dtype=np.float64)
        if self.compress_worse:
            t = _log_expand_below(t, self.median, 1.0)
        if len(self.knots_t):
            # the blend w*q(t) + (1-w)*t is increasing and piecewise linear: invert it on its own knots
            w = self.quantile_weight
            t = _interp_linear_ends(t, w * self.knots_q + (1 - w) * self.knots_t, self.knots_t)
        t = t * self.scale + self.loc
        return self.sign * self._unclip(self._inverse_power(t) * self.spread + self.shift)


def _log_compress_below(x: np.ndarray, at: float, scale: float) -> np.ndarray:
    """``x`` with the values below ``at`` log-compressed toward it: ``at - scale * log1p((at - x) / scale)``.
    ``at = -inf`` leaves ``x`` untouched (the identity, for values the inverse power map sent to +-inf too)."""
    if not np.isfinite(at):
        return x
    with np.errstate(invalid="ignore"):
        return np.where(x < at, at - scale * np.log1p(np.maximum(at - x, 0.0) / scale), x)


def _log_expand_below(x: np.ndarray, at: float, scale: float) -> np.ndarray:
    """The inverse of ``_log_compress_below``."""
    if not np.isfinite(at):
        return x
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x < at, at - scale * np.expm1(np.maximum(at - x, 0.0) / scale), x)


def _normal_score_knots(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sorted values of ``t`` and their normal scores Phi^-1((mid-rank - 0.5) / n)."""
    ranks = rankdata(t)  # ties share their mean rank
    knots_t, first = np.unique(t, return_index=True)
    return knots_t, norm.ppf((ranks[first] - 0.5) / len(t))


def _interp_linear_ends(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp`` that extends the outer segments linearly instead of clamping (``xp`` has 2+ knots)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.interp(x, xp, fp)
    lo_slope = (fp[1] - fp[0]) / (xp[1] - xp[0])
    hi_slope = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    out = np.where(x < xp[0], fp[0] + (x - xp[0]) * lo_slope, out)
    return np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * hi_slope, out)
