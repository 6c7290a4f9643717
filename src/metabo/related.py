"""Related past studies at serving: which studies join the context, and the zero-shot portfolio.

A related study is an ``AlignedStudy`` (``metabo.meta.align``): its rows encoded in the new study's unit cube and
its values normalised on its own (larger is better). ``RelatedStudies`` checks the sources when it is built, then
loads and aligns them once per search space; each suggestion then takes the studies that fit the model's task
slots (all of them, or the ``task_slots - 1`` whose predictions best rank the new study's observations,
``StudyRanking``, kept across suggestions) and lays out their points with ``metabo.context.related_points``, as
training does.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from optuna.distributions import BaseDistribution
from scipy.stats import rankdata

from metabo.context import Context, related_points, select_points
from metabo.meta import align_corpus, check_sources, load_corpus
from metabo.meta.align import AlignedStudy
from metabo.model.transformer import ContextCache, TNPModel
from metabo.normalise import DEFAULT_TRANSFORM, ValueTransformConfig

MIN_POINTS_TO_RANK = 3  # below this many own observations, studies cannot be ranked by similarity


def encode_studies(model: TNPModel, studies: Sequence[AlignedStudy], rng: np.random.RandomState,
                   points_per_study: int = 32, dims: np.ndarray | None = None) -> ContextCache:
    """Each study alone as one context of a batch (``points_per_study`` of its points, ``select_points``), encoded."""
    n = len(studies)
    width = max(min(points_per_study, len(s.y)) for s in studies)
    d = len(dims) if dims is not None else studies[0].x.shape[1]
    xc = np.zeros((n, width, d), dtype=np.float32)
    yc = np.zeros((n, width), dtype=np.float32)
    mask = np.zeros((n, width), dtype=bool)
    for i, s in enumerate(studies):
        keep = select_points(s.y, points_per_study, rng)
        xc[i, : len(keep)] = s.x[keep] if dims is None else s.x[keep][:, dims]
        yc[i, : len(keep)] = s.y[keep]
        mask[i, : len(keep)] = True
    mt = torch.as_tensor(mask)
    with torch.no_grad():
        return model.encode_context(torch.as_tensor(xc), torch.as_tensor(yc), mt, ctx_task=mt.long())


@torch.no_grad()
def predict_means(model: TNPModel, cache: ContextCache, x: np.ndarray) -> np.ndarray:
    """(n_studies, len(x)): the predicted mean of each point ``x`` in each study of ``cache`` (``encode_studies``)."""
    targets = torch.as_tensor(x, dtype=torch.float32)[None]
    return model.bar.mean(model.predict_logits(cache, targets)).numpy().astype(np.float64)


def predict_in_studies(model: TNPModel, studies: Sequence[AlignedStudy], x: np.ndarray, rng: np.random.RandomState,
                       points_per_study: int = 32, dims: np.ndarray | None = None) -> np.ndarray:
    """(n_studies, len(x)): the predicted mean of each point ``x`` in each study, with that study alone in the
    context (``points_per_study`` of its points, ``select_points``); on the study's normalised scale."""
    return predict_means(model, encode_studies(model, studies, rng, points_per_study, dims), x)


class StudyRanking:
    """Related studies, most similar first: by the rank correlation between each study's predictions at the new
    study's points (that study alone in context) and the new study's normalised values.

    Built once per list of studies and reused across suggestions: each study's ranking context is drawn and
    encoded once (on the first ranking), and each observation's predictions are computed once, when it first
    appears, so a suggestion predicts only the observations that are new since the last one.

    Args:
        model: the multi-task model.
        studies: the candidate studies.
        points_per_study: each study's points in its ranking context.
        dims: the encoded coordinates the studies' points keep (a subspace), default all.
    """

    def __init__(self, model: TNPModel, studies: Sequence[AlignedStudy], points_per_study: int = 32,
                 dims: np.ndarray | None = None) -> None:
        self.model = model
        self.studies = list(studies)
        self.points_per_study = points_per_study
        self.dims = dims
        self._cache: ContextCache | None = None
        self._means: dict[bytes, np.ndarray] = {}

    def means(self, x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """(n_studies, len(x)): each point's predicted mean in each study; ``rng`` draws the ranking contexts
        the first time."""
        if self._cache is None:
            self._cache = encode_studies(self.model, self.studies, rng, self.points_per_study, self.dims)
        x = np.ascontiguousarray(x, dtype=np.float32)
        keys = [row.tobytes() for row in x]
        new = list({k: i for i, k in enumerate(keys) if k not in self._means}.values())
        if new:
            for i, column in zip(new, predict_means(self.model, self._cache, x[new]).T):
                self._means[keys[i]] = column
        return np.stack([self._means[k] for k in keys], axis=1)

    def order(self, x_own: np.ndarray, y_own: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """Study indices, most similar first; with fewer than ``MIN_POINTS_TO_RANK`` own points there is nothing
        to compare with: a random order."""
        if len(y_own) < MIN_POINTS_TO_RANK:
            return rng.permutation(len(self.studies))
        return np.argsort(-rank_correlations(self.means(x_own, rng), y_own), kind="stable")

    def choose(self, x_own: np.ndarray, y_own: np.ndarray, rng: np.random.RandomState) -> list[AlignedStudy]:
        """The studies that fit the model's task slots: all of them, or the most similar ``task_slots - 1``."""
        n_slots = self.model.cfg.task_slots - 1
        if len(self.studies) <= n_slots:
            return list(self.studies)
        return [self.studies[i] for i in self.order(x_own, y_own, rng)[:n_slots]]


def rank_correlations(means: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of each row of ``means`` (n, m) with ``y`` (m,); 0 where a row or ``y`` is
    constant, or a row holds NaN.

    The same numbers as ``scipy.stats.spearmanr(row, y).statistic`` row by row, in one pass: the same
    operations in the same order as its ``np.corrcoef``, and ranks are multiples of 1/2, so the sums are exact in
    any order.
    """
    scores = np.zeros(len(means))
    valid = np.ptp(means, axis=1) > 0  # also False for rows holding NaN
    if not valid.any() or not np.ptp(y) > 0:
        return scores
    rx = rankdata(means[valid], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry = rankdata(y)
    ry -= ry.mean()
    inv = np.true_divide(1, len(y) - 1)
    sd_x, sd_y = np.sqrt(np.einsum("ij,ij->i", rx, rx) * inv), np.sqrt((ry @ ry) * inv)
    scores[valid] = np.clip((rx @ ry) * inv / sd_y / sd_x, -1.0, 1.0)
    return scores


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


class RelatedStudies:
    """The related past studies of one sampler: loaded and aligned once per search space, then chosen and laid
    out for each suggestion.

    The sources are checked here (``metabo.meta.check_sources``), so a bad one fails before any trial runs;
    they are loaded on first use, once per search space.

    Args:
        sources: anything ``metabo.meta.load_corpus`` takes.
        transform: the value transform; past studies' values get its ``for_past_values()`` steps.
        max_points: related points in the context per suggestion, shared among the chosen studies.
        n_warm_trials: this many first trials form a zero-shot portfolio (``portfolio_choice``): among the best
            configurations of every related study, the one that most raises the mean over studies of the best
            predicted quality so far. 0 lets the acquisition search the whole space from the start.

    Raises:
        ValueError: ``max_points`` below 1, ``n_warm_trials`` below 0; no source; a source that cannot be read or
            holds no study with a finite value (``metabo.meta.MetaDataError``, naming the source).
        FileNotFoundError: a missing table file or YAHPO data folder.
    """

    def __init__(self, sources: Any, transform: ValueTransformConfig = DEFAULT_TRANSFORM, max_points: int = 128,
                 n_warm_trials: int = 2) -> None:
        if max_points < 1:
            raise ValueError(f"max_related_points must be at least 1, got {max_points}")
        if n_warm_trials < 0:
            raise ValueError(f"n_warm_trials must be at least 0, got {n_warm_trials}")
        self.n_warm_trials = n_warm_trials
        self.sources = sources
        self._sources = check_sources(sources)
        self.transform = transform
        self.max_points = max_points
        self._aligned: dict[str, list[AlignedStudy]] = {}
        self._portfolio: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._ranking: dict[tuple, StudyRanking] = {}

    def aligned(self, search_space: Mapping[str, BaseDistribution]) -> list[AlignedStudy]:
        """The studies aligned to ``search_space`` (loaded on first use; a warning if none aligns)."""
        key = space_key(search_space)
        if key not in self._aligned:
            corpus = load_corpus(self._sources, target_space=search_space, multi_objective=True)
            aligned, _ = align_corpus(corpus, search_space, transform=self.transform)
            if not aligned:
                warnings.warn("TNPSampler: no related study could be aligned to this search space; the model "
                              "runs without related data", stacklevel=4)
            self._aligned[key] = aligned
        return self._aligned[key]

    def context(self, model: TNPModel, search_space: Mapping[str, BaseDistribution], dims: np.ndarray,
                x_own: np.ndarray, y_own: np.ndarray, rng: np.random.RandomState, objective: int | None = None
                ) -> tuple[Context, np.ndarray] | None:
        """The related points for one suggestion, and the best point of every related study (search seeds),
        both in ``dims``; ``None`` when no study aligns. ``objective``: the position of the objective ``y_own``
        holds in a study with several (``for_objective``); ``None`` for a single-objective study."""
        ranking = self.ranking(model, search_space, dims, objective)
        if not ranking.studies:
            return None
        chosen = ranking.choose(x_own[:, dims], y_own, rng)
        points = related_points(chosen, self.max_points, rng, dims=dims)
        # Search around the best configuration of every related study, not only of those in the context.
        seeds = np.stack([a.x[int(np.argmax(a.y))] for a in ranking.studies])[:, dims]
        return points, seeds

    def ranking(self, model: TNPModel, search_space: Mapping[str, BaseDistribution], dims: np.ndarray,
                objective: int | None = None) -> StudyRanking:
        """The ranking of the studies of ``objective`` (``for_objective``) in ``dims``: kept across suggestions,
        built again when the model or the subspace changes (one per search space and objective)."""
        key = (space_key(search_space), objective)
        ranking = self._ranking.get(key)
        if ranking is None or ranking.model is not model or not np.array_equal(ranking.dims, dims):
            ranking = StudyRanking(model, for_objective(self.aligned(search_space), objective), dims=dims)
            self._ranking[key] = ranking
        return ranking

    def portfolio_point(self, model: TNPModel, search_space: Mapping[str, BaseDistribution], dims: np.ndarray,
                        x_taken: np.ndarray, objective: int | None = None) -> np.ndarray | None:
        """The next zero-shot portfolio configuration (encoded, full width), or ``None`` when all are taken;
        judged on the past studies of ``objective`` (``for_objective``)."""
        aligned = for_objective(self.aligned(search_space), objective)
        key = (space_key(search_space), tuple(dims.tolist()), objective)
        # A fixed generator, so candidates and taken points are judged against the same context subsets.
        if key not in self._portfolio:
            candidates = portfolio_candidates(aligned)
            scores = study_scores(model, aligned, candidates[:, dims], np.random.RandomState(0), dims=dims)
            self._portfolio[key] = (candidates, scores)
        candidates, scores = self._portfolio[key]
        if len(x_taken):
            free = np.abs(candidates[:, None, :] - x_taken[None, :, :]).max(-1).min(1) > 1e-9
            candidates, scores = candidates[free], scores[:, free]
            own = study_scores(model, aligned, x_taken[:, dims], np.random.RandomState(0), dims=dims)
        else:
            own = np.zeros((len(aligned), 0))
        if not len(candidates):
            return None
        return candidates[portfolio_choice(scores, own)]

    def best_point(self, n_dims: int) -> np.ndarray:
        """Before the study's first observation: the best point of any related study (encoded), else the centre."""
        studies = [a for cached in self._aligned.values() for a in for_objective(cached, 0)
                   if a.encoder.n_dims == n_dims]
        if not studies:
            return np.full(n_dims, 0.5)
        best = max(studies, key=lambda a: float(a.y.max()))
        return best.x[int(np.argmax(best.y))]


def for_objective(studies: Sequence[AlignedStudy], objective: int | None) -> list[AlignedStudy]:
    """The past studies that inform an objective: for a single-objective study (``None``), the single-objective
    past studies; for objective ``k`` of a study with several, the past entries of objective ``k`` (matched by
    position), and for ``k = 0`` the single-objective past studies too."""
    if objective is None:
        return [a for a in studies if a.study.objective is None]
    return [a for a in studies if a.study.objective == objective or (objective == 0 and a.study.objective is None)]


def space_key(search_space: Mapping[str, BaseDistribution]) -> str:
    """A hashable identity of a search space."""
    return repr(sorted((n, repr(d)) for n, d in search_space.items()))
