"""Related past studies in the model's context: which studies, which of their points, and in what form.

Shared by serving (``TNPSampler(related=...)``) and fine-tuning (``metabo.train.finetune``), so the model sees
related data the same way in both. A related study is an ``AlignedStudy`` (``metabo.meta.align``): its rows
encoded in the new study's unit cube and its values normalised on its own (larger is better).

Context layout: the related points first, each with its study's task slot (1, 2, ...), then the new study's
own points with slot 0. A model has ``task_slots - 1`` slots for related studies (7 for the shipped multi-task
model); with more related studies than that, the most similar ones are chosen (``rank_studies``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from metabo.meta.align import AlignedStudy
from metabo.model.transformer import TNPModel

MIN_POINTS_TO_RANK = 3  # below this many own observations, studies cannot be ranked by similarity


@dataclass
class RelatedContext:
    """Related points ready for the model: encoded inputs, normalised values and task slots (>= 1)."""

    x: np.ndarray  # (R, d)
    y: np.ndarray  # (R,)
    slot: np.ndarray  # (R,) int
    names: list[str]  # study name per slot, slot i+1 -> names[i]
    seeds: np.ndarray | None = None  # points to search around (default: ``best_points()``)

    def __post_init__(self) -> None:
        if self.seeds is None:
            self.seeds = self.best_points()

    def __len__(self) -> int:
        return len(self.y)

    def best_points(self, per_study: int = 2) -> np.ndarray:
        """The best ``per_study`` points of each related study (candidate seeds for the acquisition search)."""
        rows = []
        for s in np.unique(self.slot):
            idx = np.flatnonzero(self.slot == s)
            rows.extend(idx[np.argsort(-self.y[idx])[:per_study]])
        return self.x[np.array(rows, dtype=int)] if rows else self.x[:0]


def select_points(y: np.ndarray, n: int, rng: np.random.RandomState) -> np.ndarray:
    """Indices of ``n`` of a study's points: its best half-share first, the rest at random (sorted)."""
    if n >= len(y):
        return np.arange(len(y))
    n_best = n // 2
    order = np.argsort(-y, kind="stable")
    rest = rng.choice(order[n_best:], size=n - n_best, replace=False)
    return np.sort(np.concatenate([order[:n_best], rest]))


def build_context(studies: Sequence[AlignedStudy], max_points: int, rng: np.random.RandomState,
                  dims: np.ndarray | None = None) -> RelatedContext:
    """Up to ``max_points`` points shared evenly among ``studies`` (task slots in the given order).

    ``dims`` restricts the encoded coordinates (the sampler's subset when a space is wider than the model).
    """
    if not studies:
        raise ValueError("no related studies to build a context from")
    per_study = max(1, max_points // len(studies))
    xs, ys, slots = [], [], []
    for i, study in enumerate(studies):
        keep = select_points(study.y, per_study, rng)
        x = study.x[keep]
        xs.append(x if dims is None else x[:, dims])
        ys.append(study.y[keep])
        slots.append(np.full(len(keep), i + 1, dtype=np.int64))
    return RelatedContext(np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64),
                          np.concatenate(slots), [s.name for s in studies])


@torch.no_grad()
def predict_in_studies(model: TNPModel, studies: Sequence[AlignedStudy], x: np.ndarray, rng: np.random.RandomState,
                       points_per_study: int = 32, dims: np.ndarray | None = None) -> np.ndarray:
    """(n_studies, len(x)): the predicted mean of each point ``x`` in each study, with that study alone in the
    context (``points_per_study`` of its points, ``select_points``); on the study's normalised scale."""
    n = len(studies)
    width = max(min(points_per_study, len(s.y)) for s in studies)
    d = x.shape[1]
    xc = np.zeros((n, width, d), dtype=np.float32)
    yc = np.zeros((n, width), dtype=np.float32)
    mask = np.zeros((n, width), dtype=bool)
    for i, s in enumerate(studies):
        keep = select_points(s.y, points_per_study, rng)
        xc[i, : len(keep)] = s.x[keep] if dims is None else s.x[keep][:, dims]
        yc[i, : len(keep)] = s.y[keep]
        mask[i, : len(keep)] = True
    mt = torch.as_tensor(mask)
    cache = model.encode_context(torch.as_tensor(xc), torch.as_tensor(yc), mt, ctx_task=mt.long())
    targets = torch.as_tensor(x, dtype=torch.float32)[None].expand(n, -1, -1)
    return model.bar.mean(model.predict_logits(cache, targets)).numpy().astype(np.float64)


def rank_studies(model: TNPModel, studies: Sequence[AlignedStudy], x_own: np.ndarray, y_own: np.ndarray,
                 rng: np.random.RandomState, points_per_study: int = 32, dims: np.ndarray | None = None) -> np.ndarray:
    """Study indices, most similar first: the rank correlation between each study's model prediction at the
    new study's points (that study alone in context) and the new study's normalised values.

    With fewer than ``MIN_POINTS_TO_RANK`` own points there is nothing to compare with: a random order.
    """
    n = len(studies)
    if len(y_own) < MIN_POINTS_TO_RANK:
        return rng.permutation(n)
    from scipy.stats import spearmanr

    means = predict_in_studies(model, studies, x_own, rng, points_per_study, dims)
    scores = np.array([spearmanr(m, y_own).statistic if np.ptp(m) > 0 else 0.0 for m in means])
    scores = np.nan_to_num(scores, nan=0.0)
    return np.argsort(-scores, kind="stable")


def study_scores(model: TNPModel, studies: Sequence[AlignedStudy], x: np.ndarray, rng: np.random.RandomState,
                 points_per_study: int = 64, dims: np.ndarray | None = None) -> np.ndarray:
    """(n_studies, len(x)): each point's predicted quality in each study on a scale the studies share: 0 at the
    study's median observed value, 1 at its best (clipped to [-2, 1.5], so no study's extrapolation dominates)."""
    means = predict_in_studies(model, studies, x, rng, points_per_study, dims)
    median = np.array([np.median(s.y) for s in studies])[:, None]
    best = np.array([np.max(s.y) for s in studies])[:, None]
    return np.clip((means - median) / np.maximum(best - median, 1e-9), -2.0, 1.5)


def portfolio_candidates(studies: Sequence[AlignedStudy], per_study: int = 3) -> np.ndarray:
    """The best ``per_study`` configurations of every study (encoded, full width), duplicates removed."""
    rows = np.concatenate([s.x[np.argsort(-s.y, kind="stable")[:per_study]] for s in studies])
    return np.unique(rows, axis=0)


def portfolio_choice(candidate_scores: np.ndarray, own_scores: np.ndarray) -> int:
    """The greedy step of a zero-shot portfolio (as Syne Tune's zero-shot transfer, with the model's
    predictions filling in configurations a study never evaluated): the candidate that most raises the mean over
    studies of the best score among the points evaluated so far.

    Args:
        candidate_scores: (n_studies, n_candidates) from ``study_scores``.
        own_scores: (n_studies, n_own) ``study_scores`` of the new study's evaluated points (n_own may be 0).
    """
    mean_score = candidate_scores.mean(axis=0)
    if not own_scores.shape[1]:
        return int(np.argmax(mean_score))
    base = own_scores.max(axis=1, keepdims=True)
    gain = np.maximum(base, candidate_scores).mean(axis=0)
    return int(np.argmax(gain + 1e-3 * mean_score))  # ties (no gain anywhere) go to the better candidate


def choose_studies(model: TNPModel, studies: Sequence[AlignedStudy], x_own: np.ndarray, y_own: np.ndarray,
                   rng: np.random.RandomState, dims: np.ndarray | None = None) -> list[AlignedStudy]:
    """The studies that fit the model's task slots: all of them, or the most similar ``task_slots - 1``."""
    n_slots = model.cfg.task_slots - 1
    if len(studies) <= n_slots:
        return list(studies)
    order = rank_studies(model, studies, x_own, y_own, rng, dims=dims)
    return [studies[i] for i in order[:n_slots]]


def concat_context(related: RelatedContext | None, x_own: np.ndarray, y_own: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The full context (related first, then own points with slot 0): inputs, values and slots (``None`` when
    there are no related points, for single-task models)."""
    if related is None or not len(related):
        return x_own, y_own, None
    x = np.concatenate([related.x, x_own.reshape(-1, related.x.shape[1])])
    y = np.concatenate([related.y, y_own])
    slot = np.concatenate([related.slot, np.zeros(len(y_own), dtype=np.int64)])
    return x, y, slot
