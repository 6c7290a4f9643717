"""TNPSampler: an Optuna sampler driven by a pretrained transformer neural process.

Data flows one way: trials -> ``SearchSpaceEncoder`` (unit cube) and ``ObjectiveTransform`` (normalised, larger is
better) -> ``TNPModel`` context encoding -> ``AcquisitionOptimizer`` -> decoded parameters.

Limits and fallbacks (never a crash):

* more encoded dimensions than the model takes (16 for the shipped model): each suggestion optimises a random
  subset of parameters that fits, and copies the others from the best trial ("dropout" BO);
* more completed trials than the model's context (200): the best half of the context is kept and the rest is a
  random subsample of the remaining trials;
* parameters outside the relative search space (dynamic or conditional ones, and categoricals with more choices
  than the model's input width): the independent sampler, with one warning per parameter;
* failed trials are ignored; NaN objective values fail in Optuna itself; +/-inf values are replaced by the worst
  finite value; a study with no finite value yet is sampled at random.

Related past studies (``related=``) go into the model's context under their own task slots (``metabo.related``):
they are loaded and aligned to the study's search space once, and each suggestion uses the ones most similar
to the study so far (all of them when they fit the model's slots). They need a multi-task model (the shipped
``multitask`` model is the default then). With a ``search_space`` given up front, even the first trial comes
from the model.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import qmc

from metabo.acquisition import AcquisitionConfig, AcquisitionKind, AcquisitionOptimizer
from metabo.model.io import load_cached, multitask_model_path
from metabo.model.transformer import TNPModel
from metabo.normalise import ObjectiveTransform
from metabo.related import (RelatedContext, build_context, choose_studies, portfolio_candidates, portfolio_choice,
                            study_scores)
from metabo.space import SearchSpaceEncoder

PRED_MEAN_ATTR = "metabo_predicted_mean"
PRED_STD_ATTR = "metabo_predicted_std"


class TNPSampler(BaseSampler):
    """Bayesian optimisation with a pretrained transformer neural process as surrogate.

    Args:
        model: path to a ``.safetensors`` model, a loaded ``TNPModel``, or ``None`` for the shipped default.
            Files are loaded once per process; a missing or invalid file raises ``ModelLoadError`` here.
        n_startup_trials: completed trials sampled by ``independent_sampler`` before the model takes over.
            Default: 4 without related studies; with them 1, or 0 when ``search_space`` is given. Without
            related studies it must be at least 2 (the objective scale needs two values).
        acquisition: ``"ei"`` (log expected improvement, default), ``"pi"``, ``"ucb"``, or ``"nap"``: the learned
            acquisition of a NAP model (``metabo nap``), which needs ``budget``.
        seed: seed for reproducible suggestions.
        independent_sampler: sampler for startup trials and for parameters outside the joint search space;
            defaults to ``RandomSampler(seed)``.
        n_candidates: size of the Sobol part of the candidate pool.
        n_refine: candidates refined by gradient ascent through the network.
        refine_steps: gradient steps per refined candidate; suggestion time grows with it. The default 2 keeps a
            suggestion near 70 ms at 200 trials on a 2-core machine (``benchmarks/speed.py``); 10 steps
            (``metabo-refine10`` in BENCHMARKS.md) took more time per suggestion for no clear gain in mean BBOB regret.
        power_transform: Yeo-Johnson transform the objective before standardising it.
        compress_worse: compress the worse half of the normalised values logarithmically toward their median
            (``metabo.normalise.ObjectiveTransform``), so a few very bad values do not hide the differences
            among the good ones. On by default: it lowered the mean regret at 25 and 50 evaluations in the
            ablation (BENCHMARKS.md); ``False`` is bench name ``metabo-nocompress``.
        quantile_weight: in [0, 1]: blend the normalised values with their normal scores (rank-based,
            ``metabo.normalise.ObjectiveTransform``) by this weight, so a few very bad values (a plateau of failed
            configurations) cannot squash the differences among the good ones. 0 (default) is off. Bench name
            ``metabo-bounds-ranks`` (with ``bound_candidates``, without ``compress_worse`` or clipping).
        clip_worse: if positive, soft-clip (log-compress) raw values more than this many robust standard
            deviations (interquartile range / 1.349) worse than their median before anything else
            (``metabo.normalise.ObjectiveTransform``), so a cluster of failures far below the rest cannot squeeze
            the good values into the model's noise level. 0 turns it off. Default ``None``: 3 without related
            studies, 0 with them. Zero-shot, 3 brought metabo level with the best peer on iaml_glmnet and was
            within noise of 0 in the ablation (BENCHMARKS.md; bench name ``metabo-noclip`` is 0). With related
            studies, whose values are standardised without clipping (as in fine-tuning), clipping only the study's
            own values put them on a different scale and raised rbv2_rpart's regret at 50 evaluations
            (``benchmarks/meta_other.sh``).
        bound_candidates: treat each continuous parameter's bounds as values of their own: the best points'
            coordinates near a bound are projected onto it as extra candidates, and the min-distance rule never
            bars a point on a bound because of one just inside it (``metabo.acquisition``). Off by default.
        warn_independent_sampling: warn (once per parameter) when a parameter falls back to the independent sampler.
        related: past studies of related problems: anything ``metabo.meta.load_corpus`` takes (``optuna.Study``
            objects, ``PastStudy`` objects, storage URLs or ``(url, pattern)`` pairs, CSV/Parquet paths,
            ``"yahpo:<scenario>"``), or a list of them. Studies that share no parameter are left out with a
            warning. Needs a model with task slots.
        search_space: the study's search space, if known up front; lets the model choose the first trials too.
        max_related_points: related points in the context per suggestion, shared among the chosen studies.
        n_warm_trials: with related studies, this many first trials form a zero-shot portfolio
            (``metabo.related.portfolio_choice``): among the best configurations of every related study, the one
            that most raises the mean over studies of the best predicted quality so far, the model predicting each
            configuration in each study. 0 lets the acquisition search the whole space from the start.
            ``benchmarks/tune_warm_trials.py`` compared 0, 1, 2, 3 and 5 on ten YAHPO validation instances: 2 had
            the lowest mean regret at 10 evaluations and the second lowest at 5.
        budget: the study's planned number of trials; the learned acquisition takes the fraction used.
        min_distance: candidates closer than this (max-norm in the encoded unit cube, where every parameter spans
            [0, 1]) to a completed or running trial are skipped. It stops the search from re-proposing its
            incumbent, which the model's noise-aware predictions otherwise rate above unexplored regions
            (``benchmarks/ablation_min_distance.sh``). 0 allows repeats, e.g. for very noisy objectives.
        improvement_margin: EI and PI count improvement only beyond the best value plus this many predictive
            standard deviations at the best point (the model's estimate of the noise there), so the incumbent's
            neighbours earn no credit for noise alone. Default 0 (plain EI on the noisy predictive): 1.0
            explored more and was better on BBOB in 2-D but worse on YAHPO's rbv2_rpart, which rewards local
            refinement (``benchmarks/ablation_min_distance.sh``, bench name ``metabo-margin``).
        initial_design: how startup trials are drawn: ``"random"`` (default; ``independent_sampler``) or
            ``"sobol"``: point ``trial.number`` of a scrambled Sobol sequence seeded by ``seed``, so the startup
            trials spread over the joint search space. The first trial of a study without ``search_space`` is
            still random (its space is not known yet). Bench name ``metabo-sobol``.
    """

    def __init__(
        self,
        *,
        model: str | Path | TNPModel | None = None,
        n_startup_trials: int | None = None,
        acquisition: AcquisitionKind = "ei",
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
        n_candidates: int = 512,
        n_refine: int = 4,
        refine_steps: int = 2,
        power_transform: bool = True,
        compress_worse: bool = True,
        quantile_weight: float = 0.0,
        clip_worse: float | None = None,
        bound_candidates: bool = False,
        warn_independent_sampling: bool = True,
        related: Any = None,
        search_space: dict[str, BaseDistribution] | None = None,
        max_related_points: int = 128,
        n_warm_trials: int = 2,
        budget: int | None = None,
        min_distance: float = 0.01,
        improvement_margin: float = 0.0,
        initial_design: Literal["random", "sobol"] = "random",
    ) -> None:
        has_related = related is not None
        if n_startup_trials is None:
            n_startup_trials = (0 if search_space else 1) if has_related else 4
        if n_startup_trials < (0 if has_related else 2):
            raise ValueError("n_startup_trials must be at least 2 without related studies (the objective scale "
                             "needs two values), and at least 0 with them")
        if initial_design not in ("random", "sobol"):
            raise ValueError(f"initial_design must be 'random' or 'sobol', got {initial_design!r}")
        self._initial_design = initial_design
        # Its own seed, drawn without touching the suggestion RNG, so one study's startup points form one sequence.
        self._sobol_seed = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**32)
        if acquisition not in ("ei", "pi", "ucb", "nap"):
            raise ValueError(f"acquisition must be 'ei', 'pi', 'ucb' or 'nap', got {acquisition!r}")
        if acquisition == "nap" and (budget is None or budget < 1):
            raise ValueError("the learned acquisition ('nap') needs the study's budget: TNPSampler(budget=N_TRIALS)")
        if not 0.0 <= min_distance < 1.0:
            raise ValueError(f"min_distance must be in [0, 1), got {min_distance}")
        if not improvement_margin >= 0.0:
            raise ValueError(f"improvement_margin must be at least 0, got {improvement_margin}")
        if max_related_points < 1:
            raise ValueError(f"max_related_points must be at least 1, got {max_related_points}")
        # Load eagerly (once per process, cached) so a bad model path fails here, not at trial n_startup + 1.
        if isinstance(model, TNPModel):
            self._model = model
        elif model is None and has_related:
            self._model = load_cached(multitask_model_path())
        else:
            self._model = load_cached(None if model is None else Path(model))
        if acquisition == "nap" and self._model.acq_head is None:
            raise ValueError("acquisition='nap' needs a model with a learned acquisition head (metabo nap)")
        if has_related and not self._model.multi_task:
            raise ValueError("related studies need a model with task slots (a multi-task model such as the shipped "
                             "'multitask' one, or a fine-tuned model); this model has none")
        self._related_sources = related
        self._related_cache: dict[str, list] = {}
        self._fixed_space = dict(search_space) if search_space else None
        self._max_related_points = max_related_points
        self._budget = budget
        self._n_startup_trials = n_startup_trials
        if n_warm_trials < 0:
            raise ValueError(f"n_warm_trials must be at least 0, got {n_warm_trials}")
        self._n_warm_trials = n_warm_trials if has_related else 0
        self._portfolio_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._acq_cfg = AcquisitionConfig(kind=acquisition, n_sobol=n_candidates, n_refine=n_refine,
                                          refine_steps=refine_steps, min_distance=min_distance,
                                          improvement_margin=improvement_margin, bound_candidates=bound_candidates)
        self._seed = seed
        self._rng = np.random.RandomState(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        if clip_worse is None:
            clip_worse = 0.0 if has_related else 3.0
        self._transform_options = dict(power=power_transform, compress_worse=compress_worse,
                                       quantile_weight=quantile_weight, clip_worse=clip_worse)
        # bad options raise here rather than at the first model-driven trial
        ObjectiveTransform(maximize=True, **self._transform_options)
        self._warn_independent = warn_independent_sampling
        self._warned_params: set[str] = set()
        self._search_space = IntersectionSearchSpace(include_pruned=True)

    # ------------------------------------------------------------------ model
    @property
    def model(self) -> TNPModel:
        return self._model

    # ------------------------------------------------------------------ BaseSampler API
    def reseed_rng(self) -> None:
        self._rng = np.random.RandomState()
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if study._is_multi_objective():
            raise ValueError("TNPSampler supports single-objective studies only")
        space = self._fixed_space if self._fixed_space is not None else self._search_space.calculate(study)
        return {n: d for n, d in space.items() if self._is_modelled(d)}

    def _is_modelled(self, dist: BaseDistribution) -> bool:
        """Single-valued parameters need no model; a categorical wider than the model's input goes to the
        independent sampler."""
        if dist.single():
            return False
        return not (isinstance(dist, CategoricalDistribution) and len(dist.choices) > self.model.cfg.max_dims)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        trials = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING), use_cache=True)
        complete = [t for t in trials if t.state == TrialState.COMPLETE and search_space.keys() <= t.params.keys()]
        if len(complete) < self._n_startup_trials:
            return self._sobol_point(search_space, trial.number) if self._initial_design == "sobol" else {}
        values = np.array([t.value for t in complete], dtype=np.float64)
        finite = np.isfinite(values)
        if finite.sum() < (1 if self._related_sources is not None else 2) and len(values):
            return {}
        maximize = study.direction == StudyDirection.MAXIMIZE
        if len(values):
            worst = values[finite].min() if maximize else values[finite].max()
            values = np.where(finite, values, worst)

        encoder = SearchSpaceEncoder(search_space)
        x = encoder.encode_many([t.params for t in complete])
        transform = ObjectiveTransform(maximize=maximize, **self._transform_options).fit(values)
        y = transform.transform(values)
        pending = [t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number
                   and search_space.keys() <= t.params.keys()]
        x_pending = encoder.encode_many([t.params for t in pending])
        x_seen = np.concatenate([x, x_pending.reshape(-1, x.shape[1])])

        x, y = self._limit_context(x, y)
        dims = self._choose_dims(encoder)
        related = self._related_context(search_space, dims, x, y)
        warm = None
        if related is not None and len(y) < self._n_warm_trials:
            warm = self._portfolio_point(search_space, dims, x_seen)
        suggestion = self._optimise(encoder, dims, x, y, x_pending, x_seen, related, warm)
        params = encoder.decode(suggestion.x)
        if len(y) >= 2:
            self._record_prediction(study, trial, suggestion.logits, transform)
        return params

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if self._warn_independent and param_name not in self._warned_params:
            n_complete = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True))
            joint = self._search_space.calculate(study)
            outside = param_name not in joint or not self._is_modelled(joint[param_name])
            if n_complete >= self._n_startup_trials and outside and not param_distribution.single():
                warnings.warn(
                    f"TNPSampler: parameter {param_name!r} is outside the space the model handles (dynamic, "
                    f"conditional, or a categorical with more than {self.model.cfg.max_dims} choices); it is "
                    f"sampled by {type(self._independent_sampler).__name__}.",
                    stacklevel=2,
                )
                self._warned_params.add(param_name)
        return self._independent_sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)

    # ------------------------------------------------------------------ internals
    def _sobol_point(self, search_space: dict[str, BaseDistribution], index: int) -> dict[str, Any]:
        """Point ``index`` of the scrambled Sobol sequence (seeded by ``seed``) over the encoded space, decoded."""
        encoder = SearchSpaceEncoder(search_space)
        sobol = qmc.Sobol(len(encoder.continuous_mask()), scramble=True, seed=self._sobol_seed)
        return encoder.decode(sobol.random_base2(index.bit_length())[index])  # 2**m > index points

    def _limit_context(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        limit = self.model.cfg.max_context
        if len(y) <= limit:
            return x, y
        order = np.argsort(-y)
        keep_best = order[: limit // 2]
        rest = self._rng.choice(order[limit // 2 :], size=limit - len(keep_best), replace=False)
        keep = np.sort(np.concatenate([keep_best, rest]))
        return x[keep], y[keep]

    def _choose_dims(self, encoder: SearchSpaceEncoder) -> np.ndarray:
        """Encoded coordinates the model optimises; a random fitting subset of parameters when too many."""
        max_dims = self.model.cfg.max_dims
        if encoder.n_dims <= max_dims:
            return np.arange(encoder.n_dims)
        widths = encoder.param_widths()
        chosen: list[int] = []
        used = 0
        for i in self._rng.permutation(len(widths)):
            start, width = widths[i]
            if used + width <= max_dims:
                chosen.extend(range(start, start + width))
                used += width
        return np.array(sorted(chosen), dtype=int)

    def _related_context(self, search_space: dict[str, BaseDistribution], dims: np.ndarray, x: np.ndarray,
                         y: np.ndarray) -> RelatedContext | None:
        """The related points for this suggestion (``None`` without related studies)."""
        if self._related_sources is None:
            return None
        key = _space_key(search_space)
        if key not in self._related_cache:
            from metabo.meta import align_corpus, load_corpus

            corpus = load_corpus(self._related_sources, target_space=search_space)
            aligned, _ = align_corpus(corpus, search_space)
            if not aligned:
                warnings.warn("TNPSampler: no related study could be aligned to this search space; the model "
                              "runs without related data", stacklevel=3)
            self._related_cache[key] = aligned
        aligned = self._related_cache[key]
        if not aligned:
            return None
        chosen = choose_studies(self.model, aligned, x[:, dims], y, self._rng, dims=dims)
        context = build_context(chosen, self._max_related_points, self._rng, dims=dims)
        # Search around the best configuration of every related study, not only of those in the context.
        context.seeds = np.stack([a.x[int(np.argmax(a.y))] for a in aligned])[:, dims]
        return context

    def _portfolio_point(self, search_space: dict[str, BaseDistribution], dims: np.ndarray, x_taken: np.ndarray
                         ) -> np.ndarray | None:
        """The next zero-shot portfolio configuration (encoded, full width), or ``None`` when all are taken."""
        space_key = _space_key(search_space)
        aligned = self._related_cache[space_key]
        key = (space_key, tuple(dims.tolist()))
        # A fixed generator, so candidates and taken points are judged against the same context subsets.
        if key not in self._portfolio_cache:
            candidates = portfolio_candidates(aligned)
            scores = study_scores(self.model, aligned, candidates[:, dims], np.random.RandomState(0), dims=dims)
            self._portfolio_cache[key] = (candidates, scores)
        candidates, scores = self._portfolio_cache[key]
        if len(x_taken):
            free = np.abs(candidates[:, None, :] - x_taken[None, :, :]).max(-1).min(1) > 1e-9
            candidates, scores = candidates[free], scores[:, free]
            own = study_scores(self.model, aligned, x_taken[:, dims], np.random.RandomState(0), dims=dims)
        else:
            own = np.zeros((len(aligned), 0))
        if not len(candidates):
            return None
        return candidates[portfolio_choice(scores, own)]

    def _best_related_point(self, encoder: SearchSpaceEncoder) -> np.ndarray:
        """Before the study's first observation: the best point of any related study (encoded), else the centre."""
        studies = [a for cached in self._related_cache.values() for a in cached if a.encoder.n_dims == encoder.n_dims]
        if not studies:
            return np.full(encoder.n_dims, 0.5)
        best = max(studies, key=lambda a: float(a.y.max()))
        return best.x[int(np.argmax(best.y))]

    def _optimise(self, encoder: SearchSpaceEncoder, dims: np.ndarray, x: np.ndarray, y: np.ndarray,
                  x_pending: np.ndarray, x_seen: np.ndarray, related: RelatedContext | None = None,
                  warm: np.ndarray | None = None):
        full_dims = len(dims) == encoder.n_dims
        incumbent = x[int(np.argmax(y))] if len(y) else self._best_related_point(encoder)

        def to_full(rows: np.ndarray) -> np.ndarray:
            if full_dims:
                return rows
            full = np.repeat(incumbent[None], len(rows), axis=0)
            full[:, dims] = rows
            return full

        def snap(rows: np.ndarray) -> np.ndarray:
            return encoder.snap(to_full(rows))[:, dims]

        categorical = [slice(int(np.searchsorted(dims, s.start)), int(np.searchsorted(dims, s.start)) + (s.stop - s.start))
                       for s in encoder.categorical_slices() if s.start in set(dims.tolist())]
        cfg = self._acq_cfg
        if cfg.kind == "nap":
            cfg = dataclasses.replace(cfg, budget_fraction=min(1.0, len(y) / self._budget))
        optimizer = AcquisitionOptimizer(self.model, encoder.continuous_mask()[dims], snap, categorical, cfg)
        with torch.random.fork_rng(enabled=False):
            cache = optimizer.encode(x[:, dims], y, x_pending[:, dims] if len(x_pending) else None, related)
            if warm is not None:
                warm = encoder.snap(warm[None])[0]
                suggestion = optimizer.suggestion_at(cache, x[:, dims], y, warm[dims])
                suggestion.x = warm
                return suggestion
            seeds = None if related is None else related.seeds
            seen = _seen_in_subspace(x_seen, incumbent, dims, cfg.min_distance)
            suggestion = optimizer.optimize(cache, x[:, dims], y, self._rng, seeds, seen)
        suggestion.x = to_full(suggestion.x[None])[0]
        return suggestion

    def _record_prediction(self, study: Study, trial: FrozenTrial, logits: torch.Tensor,
                           transform: ObjectiveTransform) -> None:
        """Store the predicted mean and std of the chosen point (on the objective's own scale) on the trial.

        The moments are taken on the model's scale and mapped back through the value transform (the mean, and
        half the distance between the images of mean - sd and mean + sd): raw-scale moments of the whole
        distribution would be dominated by the far bad tail, which a compressed or power-transformed scale maps
        to astronomically bad values.
        """
        bar = self.model.bar
        logits = logits.double()
        mean_t = float(bar.mean(logits))
        sd_t = float(bar.variance(logits).clamp_min(0.0).sqrt())
        lo, mid, hi = transform.inverse(np.array([mean_t - sd_t, mean_t, mean_t + sd_t]))
        std = abs(hi - lo) / 2 if np.isfinite(lo) and np.isfinite(hi) else float("nan")
        study._storage.set_trial_user_attr(trial._trial_id, PRED_MEAN_ATTR, float(mid))
        study._storage.set_trial_user_attr(trial._trial_id, PRED_STD_ATTR, float(std))


def _seen_in_subspace(x_seen: np.ndarray, incumbent: np.ndarray, dims: np.ndarray, min_distance: float
                      ) -> np.ndarray:
    """Seen points, restricted to ``dims``, that a candidate (the incumbent elsewhere) can come near."""
    others = np.setdiff1d(np.arange(x_seen.shape[1]), dims)
    if len(others):
        x_seen = x_seen[np.abs(x_seen[:, others] - incumbent[others]).max(1) < min_distance]
    return x_seen[:, dims]


def _space_key(search_space: dict[str, BaseDistribution]) -> str:
    return repr(sorted((n, repr(d)) for n, d in search_space.items()))
