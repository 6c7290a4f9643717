"""The transformer neural process: observed points in context, candidates scored against them.

Each observed point is a token ``embed_x(x) + embed_y(y)`` (plus, in models with task slots, ``embed_task(t)``:
slot 0 marks the new study's own points, slots 1.. the points of related past studies, one slot per study, so
the model can tell studies apart and weigh them); each candidate is a token ``embed_x(x)``. A learned
"null" token is always present in the context so an empty study is well defined. In every layer the context
tokens attend to each other (self-attention) and the candidate tokens attend only to the context tokens of the
same layer (cross-attention, same weights). Candidates never see each other, so each is scored independently
and the cost is O(C^2 + Q*C) rather than O((C+Q)^2). ``encode_context`` runs the context half once;
``predict_logits`` then scores any number of candidate batches against that cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metabo.model.bar_distribution import BarDistribution


@dataclass
class ModelConfig:
    """Architecture hyper-parameters (stored in the model card)."""

    max_dims: int = 16  # encoded input width; narrower spaces are zero-padded
    d_model: int = 128  # token width
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 256  # hidden width of the feed-forward blocks and the heads
    n_buckets: int = 1000  # bars of the predictive distribution
    max_context: int = 200  # own points the serving context holds (the rest subsampled)
    distance_bias: bool = True  # attention biased by squared input distance, one bandwidth per head
    task_slots: int = 0  # 0: single-task model; k > 0: slot 0 is the target study, 1..k-1 related studies
    acquisition_head: bool = False  # a learned acquisition function (NAP), trained by metabo.train.nap

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


class _Block(nn.Module):
    """Pre-norm transformer block applied to context (self) and candidates (cross) with shared weights."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        # Per-head bandwidths of the squared-distance attention bias, log-spaced at init (multi-scale smoother).
        init = torch.logspace(-0.5, 2.5, cfg.n_heads) if cfg.distance_bias else torch.zeros(cfg.n_heads)
        self.log_bandwidth = nn.Parameter(torch.log(init.clamp_min(1e-6))) if cfg.distance_bias else None
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))

    def _heads(self, t: Tensor) -> Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def context_kv(self, ctx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.qkv(self.norm_attn(ctx)).chunk(3, dim=-1)
        return self._heads(q), self._heads(k), self._heads(v)

    def _finish(self, h: Tensor, attn: Tensor) -> Tensor:
        b, _, n, dh = attn.shape
        h = h + self.out(attn.transpose(1, 2).reshape(b, n, -1))
        return h + self.ff(self.norm_ff(h))

    def attention_bias(self, sq_dist: Tensor | None, mask: Tensor | None) -> Tensor | None:
        """Additive attention bias: -bandwidth_h * ||x_q - x_k||^2 per head, plus ``mask`` (0 or -inf per key)."""
        bias = None
        if self.log_bandwidth is not None and sq_dist is not None:
            bias = -torch.exp(self.log_bandwidth)[None, :, None, None] * sq_dist[:, None]
        if mask is not None:
            bias = mask if bias is None else bias + mask
        return bias

    def forward_context(self, ctx: Tensor, mask: Tensor | None, sq_dist: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.context_kv(ctx)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=self.attention_bias(sq_dist, mask))
        return self._finish(ctx, attn), k, v

    def forward_candidates(self, cand: Tensor, k: Tensor, v: Tensor, mask: Tensor | None,
                           sq_dist: Tensor | None = None) -> Tensor:
        b, q_len, d = cand.shape
        w_q = self.qkv.weight[:d]
        b_q = self.qkv.bias[:d]
        q = self._heads(F.linear(self.norm_attn(cand), w_q, b_q))
        if k.shape[0] < b:  # one cached context shared by a batch of candidate sets
            k, v = k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)
        elif b < k.shape[0]:  # one candidate set read against a batch of contexts
            q = q.expand(k.shape[0], -1, -1, -1)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=self.attention_bias(sq_dist, mask))
        return self._finish(cand, attn)


@dataclass
class ContextCache:
    """Per-layer keys/values of an encoded context, reusable across candidate batches."""

    keys: list[Tensor] = field(default_factory=list)
    values: list[Tensor] = field(default_factory=list)
    mask: Tensor | None = None  # (B, 1, 1, C+1) additive key mask (0: attend, -inf: padding); None: no padding
    x: Tensor | None = None  # (B, C, max_dims) padded context inputs, (1, C, max_dims) if every row shares them


class TNPModel(nn.Module):
    """Transformer neural process with a bar-distribution head over the normalised objective."""

    def __init__(self, cfg: ModelConfig, borders: Tensor) -> None:
        super().__init__()
        if borders.numel() != cfg.n_buckets + 1:
            raise ValueError(f"expected {cfg.n_buckets + 1} borders, got {borders.numel()}")
        self.cfg = cfg
        self.embed_x = nn.Sequential(nn.Linear(cfg.max_dims, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, cfg.d_model))
        self.embed_y = nn.Sequential(nn.Linear(2, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, cfg.d_model))
        self.null_token = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        # Zero-initialised so a single-task model's weights load unchanged into a multi-task one.
        self.embed_task = nn.Embedding(cfg.task_slots, cfg.d_model) if cfg.task_slots else None
        if self.embed_task is not None:
            nn.init.zeros_(self.embed_task.weight)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.LayerNorm(cfg.d_model)
        self.head = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.n_buckets))
        self.bar = BarDistribution(borders)
        # NAP: a score per candidate from its final representation and the fraction of the budget used.
        self.acq_head = nn.Sequential(nn.Linear(cfg.d_model + 1, cfg.d_ff), nn.GELU(),
                                      nn.Linear(cfg.d_ff, 1)) if cfg.acquisition_head else None

    # ---------------------------------------------------------------- inputs
    def _pad_x(self, x: Tensor) -> Tensor:
        d = x.shape[-1]
        if d > self.cfg.max_dims:
            raise ValueError(f"model takes at most {self.cfg.max_dims} encoded dimensions, got {d}")
        if d < self.cfg.max_dims:
            x = F.pad(x, (0, self.cfg.max_dims - d))  # unused inputs are 0, exactly as in the prior's tasks
        return x - 0.5

    def _embed_y(self, y: Tensor) -> Tensor:
        y = y.clamp(-20.0, 20.0)
        return self.embed_y(torch.stack([y, y.abs().log1p()], dim=-1))

    # ---------------------------------------------------------------- forward
    @property
    def multi_task(self) -> bool:
        """Whether the model takes related studies' points (task slots) in its context."""
        return self.embed_task is not None

    def encode_context(self, x_ctx: Tensor, y_ctx: Tensor, ctx_mask: Tensor | None = None,
                       ctx_task: Tensor | None = None) -> ContextCache:
        """Run the context half once.

        Args:
            x_ctx: (B, C, d) encoded inputs in [0, 1], d <= max_dims.
            y_ctx: (B, C) normalised objective values (larger is better).
            ctx_mask: optional (B, C) boolean, True for real points; False entries are ignored (padding).
            ctx_task: optional (B, C) task slots (0: the target study, 1..task_slots-1: related studies);
                ``None`` means every point is the target's. Only multi-task models accept nonzero slots.
        """
        b = x_ctx.shape[0]
        x_pad = self._pad_x(x_ctx)
        tokens = self.embed_x(x_pad) + self._embed_y(y_ctx)
        if ctx_task is not None:
            slots = max(self.cfg.task_slots, 1)
            if ctx_task.numel() and (int(ctx_task.min()) < 0 or int(ctx_task.max()) >= slots):
                if self.embed_task is None:
                    raise ValueError("this model has no task slots: it cannot take related studies' points")
                raise ValueError(f"task slots must lie in [0, {slots - 1}]")
            if self.embed_task is not None:
                tokens = tokens + self.embed_task(ctx_task.long())
        elif self.embed_task is not None:
            tokens = tokens + self.embed_task.weight[0]
        h = torch.cat([self.null_token.expand(b, -1, -1), tokens], dim=1)
        attn_mask = None
        if ctx_mask is not None and not bool(ctx_mask.all()):  # a mask that keeps every point is no mask
            keep = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=ctx_mask.device), ctx_mask.bool()], dim=1)
            attn_mask = torch.zeros(keep.shape, device=keep.device).masked_fill(~keep, float("-inf"))[:, None, None, :]
        # Contexts that share their inputs (one per model output) keep one copy, so candidates' distances are
        # computed once for all of them.
        shared_x = b > 1 and bool((x_pad == x_pad[:1]).all())
        cache = ContextCache(mask=attn_mask, x=x_pad[:1] if shared_x else x_pad)
        sq = self._sq_dist(x_pad, x_pad, null_rows=True)
        for i, block in enumerate(self.blocks):
            if i + 1 < len(self.blocks):
                h, k, v = block.forward_context(h, attn_mask, sq)
            else:  # candidates read the last layer's context keys and values only, never its output
                _, k, v = block.context_kv(h)
            cache.keys.append(k)
            cache.values.append(v)
        return cache

    def candidate_features(self, cache: ContextCache, x_cand: Tensor) -> Tensor:
        """Final representations (B, Q, d_model) of candidates (B, Q, d) given an encoded context of B rows.

        Candidates (1, Q, d) are read against every row of the context; the layers before the first attention
        (and the distances, where the rows share their inputs) are then computed once for all rows.
        """
        x_pad = self._pad_x(x_cand)
        h = self.embed_x(x_pad)
        sq = self._sq_dist(x_pad, cache.x, null_rows=False)
        for block, k, v in zip(self.blocks, cache.keys, cache.values):
            h = block.forward_candidates(h, k, v, cache.mask, sq)
        return self.norm_out(h)

    def predict_logits(self, cache: ContextCache, x_cand: Tensor) -> Tensor:
        """Bucket logits (B, Q, K) for candidates (B, Q, d) given an encoded context."""
        return self.head(self.candidate_features(cache, x_cand))

    def acquisition_scores(self, features: Tensor, budget_fraction: float | Tensor) -> Tensor:
        """The learned acquisition (B, Q) from ``candidate_features``; ``budget_fraction`` is t/T in [0, 1]."""
        if self.acq_head is None:
            raise ValueError("this model has no learned acquisition head (train one with metabo.train.nap)")
        frac = torch.as_tensor(budget_fraction, dtype=features.dtype).clamp(0.0, 1.0)
        frac = frac.reshape(-1, 1, 1).expand(features.shape[0], features.shape[1], 1)
        return self.acq_head(torch.cat([features, frac], dim=-1))[..., 0]

    def _sq_dist(self, xq: Tensor, xc: Tensor | None, null_rows: bool) -> Tensor | None:
        """Squared distances (B, Q(+1), C+1) with zero distance to the null token (and for its own row)."""
        if not self.cfg.distance_bias or xc is None:
            return None
        if xc.shape[0] < xq.shape[0]:
            xc = xc.expand(xq.shape[0], -1, -1)
        elif xq.shape[0] < xc.shape[0]:
            xq = xq.expand(xc.shape[0], -1, -1)
        sq = torch.cdist(xq, xc, compute_mode="use_mm_for_euclid_dist").pow(2) if xc.shape[1] else xq.new_zeros(
            xq.shape[0], xq.shape[1], 0)
        sq = F.pad(sq, (1, 0))
        return F.pad(sq, (0, 0, 1, 0)) if null_rows else sq

    def forward(self, x_ctx: Tensor, y_ctx: Tensor, x_cand: Tensor, ctx_mask: Tensor | None = None,
                ctx_task: Tensor | None = None) -> Tensor:
        return self.predict_logits(self.encode_context(x_ctx, y_ctx, ctx_mask, ctx_task), x_cand)
