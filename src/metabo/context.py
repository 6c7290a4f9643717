"""What the model reads: the context, and the one set of functions that lays it out.

Layout, the same in serving (``TNPSampler``), pretraining, fine-tuning and NAP training: the related studies'
points first, each study under its own task slot (1, 2, ...), then the study's own points under slot 0, then,
at serving, the pending (running) trials under slot 0 with a fantasy value. Padding, where contexts of
different lengths share a batch, is masked.

Which points: a study with more points than fit keeps its best half and fills the rest with a random sample of
the others (``select_points``), both for the study's own points (beyond the model's context size) and for each
related study's share of the related points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from metabo.meta.align import AlignedStudy
from metabo.model.transformer import ContextCache, TNPModel

OWN_SLOT = 0


@dataclass
class Context:
    """Points the model reads: encoded inputs, normalised values (larger is better) and task slots.

    Attributes:
        x: (n, d) encoded inputs in the unit cube.
        y: (n,) values on the model's scale.
        task: (n,) task slots: 0 for the study's own points, 1.. for related studies.
    """

    x: np.ndarray
    y: np.ndarray
    task: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    @property
    def has_related(self) -> bool:
        return bool(np.any(self.task != OWN_SLOT))

    def tensors(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """Batch-of-one tensors for ``TNPModel.encode_context``; slots are ``None`` without related points, so a
        single-task model can read the context."""
        x = torch.as_tensor(self.x, dtype=torch.float32)[None]
        y = torch.as_tensor(self.y, dtype=torch.float32)[None]
        return x, y, torch.as_tensor(self.task)[None] if self.has_related else None


def select_points(y: np.ndarray, n: int, rng: np.random.RandomState) -> np.ndarray:
    """Indices (sorted) of ``n`` of a study's points: the best ``n // 2``, the rest at random among the others."""
    if n >= len(y):
        return np.arange(len(y))
    n_best = n // 2
    order = np.argsort(-y, kind="stable")
    rest = rng.choice(order[n_best:], size=n - n_best, replace=False)
    return np.sort(np.concatenate([order[:n_best], rest]))


def related_points(studies: Sequence[AlignedStudy], max_points: int, rng: np.random.RandomState,
                   slots: Sequence[int] | None = None, dims: np.ndarray | None = None) -> Context:
    """Up to ``max_points`` points shared evenly among ``studies`` (``select_points`` in each).

    Args:
        studies: aligned past studies (``metabo.meta.align``), values normalised per study.
        max_points: related points in all.
        rng: draws the random part of each study's share.
        slots: the task slot of each study (default 1, 2, ... in order; training draws them at random so that
            no slot means anything by itself).
        dims: the encoded coordinates to keep (a subspace), default all.
    """
    if not studies:
        raise ValueError("no related studies to build a context from")
    slots = list(range(1, len(studies) + 1)) if slots is None else list(slots)
    per_study = max(1, max_points // len(studies))
    xs, ys, tasks = [], [], []
    for study, slot in zip(studies, slots):
        keep = select_points(study.y, per_study, rng)
        xs.append(study.x[keep] if dims is None else study.x[keep][:, dims])
        ys.append(study.y[keep])
        tasks.append(np.full(len(keep), slot, dtype=np.int64))
    return Context(np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64),
                   np.concatenate(tasks))


def join(related: Context | None, x_own: np.ndarray, y_own: np.ndarray) -> Context:
    """The context of one study: ``related`` points first (if any), then its own points under slot 0."""
    x_own = np.asarray(x_own, dtype=np.float64)
    y_own = np.asarray(y_own, dtype=np.float64)
    own = Context(x_own, y_own, np.full(len(y_own), OWN_SLOT, dtype=np.int64))
    if related is None or not len(related):
        return own
    return Context(np.concatenate([related.x, x_own.reshape(-1, related.x.shape[1])]),
                   np.concatenate([related.y, y_own]), np.concatenate([related.task, own.task]))


def join_batch(x_rel: Tensor | None, y_rel: Tensor | None, task_rel: Tensor | None, x_own: Tensor, y_own: Tensor
               ) -> tuple[Tensor, Tensor, Tensor | None]:
    """``join`` for batches of equal-length contexts (pretraining): (B, R + C, d) inputs, values and slots."""
    if x_rel is None:
        return x_own, y_own, None
    task = torch.cat([task_rel, torch.full_like(y_own, OWN_SLOT, dtype=torch.long)], dim=1)
    return torch.cat([x_rel, x_own], dim=1), torch.cat([y_rel, y_own], dim=1), task


def collate(contexts: Sequence[Context], width: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Contexts of different lengths as one padded batch: inputs (B, C, width), values, slots and the mask of
    real points. ``width`` (default: the widest context's) pads narrower inputs with zeros."""
    b = len(contexts)
    d = width if width is not None else max(ctx.x.shape[1] if ctx.x.ndim == 2 else 0 for ctx in contexts)
    c = max(len(ctx) for ctx in contexts)
    x, y = torch.zeros(b, c, d), torch.zeros(b, c)
    task, mask = torch.zeros(b, c, dtype=torch.long), torch.zeros(b, c, dtype=torch.bool)
    for i, ctx in enumerate(contexts):
        n = len(ctx)
        if n:
            x[i, :n, : ctx.x.shape[1]], y[i, :n] = torch.as_tensor(ctx.x), torch.as_tensor(ctx.y)
            task[i, :n], mask[i, :n] = torch.as_tensor(ctx.task), True
    return x, y, task, mask


@torch.no_grad()
def encode(model: TNPModel, context: Context | Sequence[Context], x_pending: np.ndarray | None = None
           ) -> ContextCache:
    """Encode ``context`` for scoring candidates: one context, or one per model output (objectives and
    constraints, ``metabo.outcomes``) as one batch. Pending points join every context under slot 0, valued at
    that output's predicted mean ("kriging believer"), so parallel workers spread out."""
    if isinstance(context, Context):
        (x, y, task), mask = context.tensors(), None
    else:
        x, y, task, mask = collate(context)
        task = task if any(c.has_related for c in context) else None
    cache = model.encode_context(x, y, mask, ctx_task=task)
    if x_pending is None or not len(x_pending):
        return cache
    b = x.shape[0]
    xp = torch.as_tensor(x_pending, dtype=torch.float32)[None]
    fantasy = model.bar.mean(model.predict_logits(cache, xp))  # (b, P): one set of points, every context
    xp = xp.expand(b, -1, -1)
    if task is not None:
        task = torch.cat([task, torch.full((b, xp.shape[1]), OWN_SLOT, dtype=task.dtype)], 1)
    if mask is not None:
        mask = torch.cat([mask, torch.ones(b, xp.shape[1], dtype=torch.bool)], 1)
    return model.encode_context(torch.cat([x, xp], 1), torch.cat([y, fantasy], 1), mask, ctx_task=task)
