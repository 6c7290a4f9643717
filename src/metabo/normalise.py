"""The value transform: how a study's raw objective values reach the model, and back.

The model always sees values standardised by the statistics of the *context* (never of the query points), with
larger meaning better. Before that, a study's values may be soft-clipped (a cluster of failures far below the
rest), Yeo-Johnson transformed (heavy tails, bad scales) and, after standardising, the worse half log-compressed
toward the median, so a few very bad values do not squeeze the differences among the good ones below the bar
distribution's resolution. Every step has an exact inverse.

``ValueTransformConfig`` is the one place these settings live; serving (``TNPSampler``), related studies
(``metabo.meta.align``), fine-tuning and NAP training all take it, and its ``for_*`` methods say which steps apply
to which values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
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


@dataclass(frozen=True)
class ValueTransformConfig:
    """Settings of the value transform, with the rule for which values each step applies to.

    Attributes:
        power: Yeo-Johnson transform the values (fitted per study) before standardising them.
        compress_worse: after standardising, log-compress the values below the median toward it (``t`` below
            the median ``m`` becomes ``m - log1p(m - t)``). Applies to the study's own values at serving only:
            past studies' values (in context, and as fine-tuning and NAP targets) are not compressed, because the
            shipped fine-tuned and NAP models were trained on uncompressed values.
        clip_worse: if positive, soft-clip raw values more than this many robust standard deviations
            (interquartile range / 1.349) worse than the median first: beyond that threshold ``c`` a value
            ``v`` maps to ``c - r * log1p((c - v) / r)``, so a plateau of failures neither drives the
            Yeo-Johnson fit nor inflates the scale the good values are measured in. 0 is off.
        clip_with_related: whether ``clip_worse`` also applies to the study's own values when related studies
            share the context. Off: related studies' values are standardised without clipping, and clipping only
            the study's own values puts them on another scale than the context they are read against (on
            rbv2_rpart it raised transfer regret at 50 evaluations; BENCHMARKS.md).
    """

    power: bool = True
    compress_worse: bool = True
    clip_worse: float = 3.0
    clip_with_related: bool = False

    def __post_init__(self) -> None:
        if not self.clip_worse >= 0.0:
            raise ValueError(f"clip_worse must be >= 0 (0 is off), got {self.clip_worse}")

    def for_own_values(self, with_related: bool) -> "ValueTransformConfig":
        """The steps applied to the study's own values at serving."""
        if with_related and not self.clip_with_related:
            return replace(self, clip_worse=0.0)
        return self

    def for_past_values(self) -> "ValueTransformConfig":
        """The steps applied to a past study's values, normalised on their own: in the related context, and as
        the targets of fine-tuning and NAP training."""
        return replace(self, compress_worse=False, clip_worse=0.0)


DEFAULT_TRANSFORM = ValueTransformConfig()


class ObjectiveTransform:
    """Per-study map from raw objective values to the model's scale, and back.

    Args:
        maximize: whether larger raw values are better.
        config: which steps to apply (``ValueTransformConfig``; use its ``for_*`` methods to pick the steps
            for own or past values).
    """

    def __init__(self, maximize: bool, config: ValueTransformConfig = DEFAULT_TRANSFORM) -> None:
        self.config = config
        self.clip_at = -np.inf
        self.clip_scale = 1.0
        self.sign = 1.0 if maximize else -1.0
        self.median = 0.0
        self.lmbda: float | None = None
        self.shift = 0.0
        self.spread = 1.0
        self.loc = 0.0
        self.scale = 1.0

    def fit(self, values: np.ndarray) -> "ObjectiveTransform":
        cfg = self.config
        v = self.sign * np.asarray(values, dtype=np.float64)
        self.clip_at, self.clip_scale = -np.inf, 1.0
        if cfg.clip_worse > 0 and v.size >= 4:
            q25, q50, q75 = np.percentile(v, [25, 50, 75])
            robust_sd = (q75 - q25) / 1.349
            if robust_sd > 1e-300:
                self.clip_at, self.clip_scale = float(q50 - cfg.clip_worse * robust_sd), float(robust_sd)
        v = _log_compress_below(v, self.clip_at, self.clip_scale)
        # Pre-standardise so Yeo-Johnson's lambda search is well conditioned whatever the raw scale.
        self.shift = float(np.median(v)) if v.size else 0.0
        with np.errstate(over="ignore"):  # values near the float limit: handled below
            spread = float(np.std(v)) if v.size > 1 else 1.0
        if not np.isfinite(spread):  # values near the float limit (a 1e300 penalty): the variance overflows
            largest = float(np.max(np.abs(v - self.shift)))
            spread = float(np.std((v - self.shift) / largest)) * largest
        self.spread = spread if spread > 1e-300 else 1.0
        z = (v - self.shift) / self.spread
        if cfg.power and v.size >= 3 and np.ptp(z) > 0:
            self.lmbda = fit_yeojohnson_lambda(z)
        t = self._forward_power(z)
        loc, scale = context_loc_scale(torch.as_tensor(t)[None])
        self.loc, self.scale = float(loc), float(scale)
        t = (t - self.loc) / self.scale
        self.median = float(np.median(t)) if t.size else 0.0
        return self

    def _forward_power(self, z: np.ndarray) -> np.ndarray:
        if self.lmbda is None:
            return z
        z = np.asarray(z, dtype=np.float64)
        return yeojohnson(z.reshape(-1), np.array([self.lmbda]))[0].reshape(z.shape)

    def _inverse_power(self, t: Tensor) -> Tensor:
        if self.lmbda is None:
            return t
        lm = self.lmbda
        pos = t >= 0
        # Each branch on its own side of 0 only (clamped), so neither overflows nor poisons the gradient.
        tp, tn = t.clamp_min(0.0), t.clamp_max(0.0)
        up = torch.expm1(tp) if abs(lm) <= 1e-12 else (tp * lm + 1).clamp_min(1e-300) ** (1 / lm) - 1
        down = (-torch.expm1(-tn) if abs(lm - 2) <= 1e-12
                else 1 - (-(2 - lm) * tn + 1).clamp_min(1e-300) ** (1 / (2 - lm)))
        return torch.where(pos, up, down)

    def transform(self, values: np.ndarray) -> np.ndarray:
        v = _log_compress_below(self.sign * np.asarray(values, dtype=np.float64), self.clip_at, self.clip_scale)
        t = (self._forward_power((v - self.shift) / self.spread) - self.loc) / self.scale
        if self.config.compress_worse:
            t = _log_compress_below(t, self.median, 1.0)
        return t

    def inverse(self, normalised: np.ndarray) -> np.ndarray:
        """Raw values of model-scale ``normalised`` values (float64)."""
        return self.inverse_tensor(torch.as_tensor(np.asarray(normalised, dtype=np.float64))).numpy()

    def inverse_tensor(self, t: Tensor) -> Tensor:
        """``inverse`` on a tensor, differentiable (in the tensor's dtype)."""
        if self.config.compress_worse:
            t = _expand_below(t, self.median, 1.0)
        t = t * self.scale + self.loc
        return self.sign * _expand_below(self._inverse_power(t) * self.spread + self.shift, self.clip_at,
                                         self.clip_scale)


def _log_compress_below(x: np.ndarray, at: float, scale: float) -> np.ndarray:
    """``x`` with the values below ``at`` log-compressed toward it: ``at - scale * log1p((at - x) / scale)``.
    ``at = -inf`` leaves ``x`` untouched (the identity, for values the inverse power map sent to +-inf too)."""
    if not np.isfinite(at):
        return x
    with np.errstate(invalid="ignore"):
        return np.where(x < at, at - scale * np.log1p(np.maximum(at - x, 0.0) / scale), x)


def _expand_below(x: Tensor, at: float, scale: float) -> Tensor:
    """The inverse of ``_log_compress_below``."""
    if not np.isfinite(at):
        return x
    return torch.where(x < at, at - scale * torch.expm1((at - x).clamp_min(0.0) / scale), x)
