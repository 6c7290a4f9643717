"""TNPSampler: an Optuna sampler driven by a pretrained transformer neural process.

The sampler only orchestrates; data flows one way: trials -> ``SearchSpaceEncoder`` (unit cube) and
``metabo.outcomes`` (each objective and each constraint one output on the model's scale) -> ``metabo.context``
(own, related and pending points, as training lays them out; one context per output) -> ``TNPModel`` (all outputs
in one batched pass) -> an ``Acquisition`` (log-EI; feasibility-weighted under constraints; log-EHVI or ParEGO
for several objectives) maximised over a ``Subspace`` (``metabo.acquisition``) -> decoded parameters, reserved on
the trial (``RESERVED_ATTR``) so simultaneous workers keep apart.

Limits and fallbacks (never a crash):

* more encoded dimensions than the default model takes (16): the shipped wide model (64 inputs) takes over
  (with related studies, the 64-input multi-task model), and without related studies the search refines deeper
  (``WIDE_SEARCH``);
  beyond its width too (or with a model of your own), each suggestion optimises a random subset of parameters
  that fits, and keeps the others at the best trial's values (``Subspace``);
* more completed trials than the model's context (200): the best half of the context is kept and the rest is a
  random subsample of the remaining trials (``metabo.context.select_points``);
* conditional parameters (suggested by some trials only) are modelled with the rest: the search space is the
  union of the trials' parameters, and the conditions are read from the trials (``metabo.conditions``); a
  parameter's first ever value comes from the independent sampler, since no trial holds it yet;
* categoricals with more than ``metabo.space.MAX_ONE_HOT_CHOICES`` choices are one ordinal coordinate, their
  choices ordered by the results so far (``metabo.space.rank_choices``);
* parameters whose distribution changes between trials (dynamic ranges): the independent sampler, with one
  warning per parameter;
* failed trials are ignored; NaN objective values fail in Optuna itself; +/-inf values (and values beyond
  ``metabo.outcomes.HUGE_VALUE``) are replaced by the worst other value; a study with no finite value yet is
  sampled at random; pruned trials are never proposed again;
* with a declared ``search_space``, trials suggested from other distributions are left out of the model's data;
* constraints a trial did not report are left out of that constraint's model (``metabo.outcomes``).

Related past studies (``related=``, ``metabo.related.RelatedStudies``) go into the model's context under their own
task slots. They need a multi-task model (the shipped ``multitask`` model is the default then). With a
``search_space`` given up front, even the first trial comes from the model.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.samplers._base import _process_constraints_after_trial
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from metabo import context as ctx
from metabo.acquisition import (ACQUISITION_KINDS, MULTI_OBJECTIVE_SEARCH, TRANSFER_SEARCH, WIDE_SEARCH,
                                WIDE_SPACE_DIMS, Acquisition, AcquisitionKind, CandidateSearchConfig,
                                FeasibilityWeighted, make_acquisition, optimize_acquisition)
from metabo.acquisition.hypervolume import (MAX_EHVI_OBJECTIVES, LogExpectedHypervolumeImprovement,
                                            LogExpectedScalarisedImprovement, MeasuredObjectives)
from metabo.conditions import UnionSearchSpace, infer_conditions
from metabo.model.io import load_cached, multitask_model_path, shipped_model_path
from metabo.model.transformer import TNPModel
from metabo.normalise import DEFAULT_TRANSFORM, ValueTransformConfig
from metabo.outcomes import HUGE_VALUE, Outcomes, constraint_names, read_outcomes
from metabo.related import RelatedStudies
from metabo.space import SearchSpaceEncoder, Subspace, rank_choices

PRED_MEAN_ATTR = "metabo_predicted_mean"
PRED_STD_ATTR = "metabo_predicted_std"
PRED_FEASIBILITY_ATTR = "metabo_predicted_feasibility"
# System attribute holding a running trial's suggestion (internal representations) until Optuna stores its params.
RESERVED_ATTR = "metabo:suggestion"
MAX_RESERVATION_RETRIES = 2  # full re-suggestions after a clash; then nudges
# Default start-up length once the trials show a conditional space (BENCHMARKS.md, What was tried).
CONDITIONAL_STARTUP_TRIALS = 10
MAX_NUDGES = 20

_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 1


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run the model on one torch thread, then restore the process's setting (re-entrant across threads).

    A suggestion's tensors are small: a second thread made it no faster on an idle 2-core machine and several
    times slower on a busy one, and a fixed thread count makes the suggestions the same on every machine.
    """
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def _pending_params(trial: FrozenTrial, encoder: SearchSpaceEncoder) -> dict[str, Any] | None:
    """A running trial's parameters in the encoder's space: those stored so far over the suggestion reserved for
    it (``RESERVED_ATTR``); ``None`` if they lack a parameter every trial holds or hold none of the space's."""
    search_space = encoder.search_space
    params: dict[str, Any] = {}
    for name, value in (trial.system_attrs.get(RESERVED_ATTR) or {}).items():
        dist = search_space.get(name)
        try:
            if dist is not None and dist._contains(value):
                params[name] = dist.to_external_repr(value)
        except (TypeError, ValueError, IndexError):
            continue
    params.update({name: value for name, value in trial.params.items() if name in search_space})
    return params if params and encoder.required <= params.keys() else None


class TNPSampler(BaseSampler):
    """Bayesian optimisation with a pretrained transformer neural process as surrogate.

    Works on single- and multi-objective studies, with or without constraints (``trial.set_constraint``, or the
    deprecated ``constraints_func``), with parallel workers on any Optuna storage, and with pruners.

    Args:
        model: path to a ``.safetensors`` model, a loaded ``TNPModel``, or ``None`` for the shipped default
            (the shipped ``wide`` model for spaces of more than 16 encoded dimensions; the shipped multi-task model
            when ``related`` is given, ``multitask_wide`` for such wider spaces). Files are loaded once per
            process; a missing or invalid file raises ``ModelLoadError`` here.
        related: past studies of related problems: anything ``metabo.meta.load_corpus`` takes (``optuna.Study``
            objects, ``PastStudy`` objects, storage URLs or ``(url, pattern)`` pairs, CSV/Parquet paths,
            ``"yahpo:<scenario>"``), or a list of them, or a ``metabo.related.RelatedStudies`` (to set how many
            related points join the context, and how many first trials form a zero-shot portfolio). Needs a model
            with task slots. Sources are checked here: a missing
            file, a bad storage URL, a pattern matching no study or a source without a finite value raises before
            any trial runs. In a study with several objectives, each objective reads the past studies' values of
            that objective (matched by position; single-objective past studies inform the first).
        search_space: the study's search space, if known up front; lets the model choose the first trials too.
        seed: seed for reproducible suggestions.
        n_startup_trials: completed trials sampled by ``independent_sampler`` before the model takes over (at
            least 0). Default: 4 without related studies, or 10 once the trials show a conditional space (some
            trials lack a parameter others have); with related studies 1, or 0 when ``search_space`` is given.
            Without related studies the model needs a finite value of each objective to condition on, so 0 and 1
            both let it choose from the second trial on.
        acquisition: ``"ei"`` (log expected improvement, default), ``"pi"``, ``"ucb"``, or ``"nap"``: the learned
            acquisition of a NAP model (``metabo nap``), which needs ``budget``.
        budget: the study's planned number of trials; the learned acquisition takes the fraction used.
        independent_sampler: sampler for startup trials and for parameters outside the joint search space;
            defaults to ``RandomSampler(seed)``.
        transform: how objective values are normalised (``metabo.normalise.ValueTransformConfig``).
        search: how candidates are proposed and refined (``metabo.acquisition.CandidateSearchConfig``), including
            ``min_distance``, the spacing that stops the search from re-proposing evaluated points. Default:
            ``CandidateSearchConfig()``, or with related studies ``metabo.acquisition.TRANSFER_SEARCH`` (which
            also proposes copies of the best points moved onto the bounds); with several objectives, either with
            ``metabo.acquisition.MULTI_OBJECTIVE_SEARCH``'s pool and refinement (gradient steps with a line search),
            and with one objective and no related studies in spaces of more than 16 encoded coordinates with
            ``metabo.acquisition.WIDE_SEARCH``'s refinement (more starts and steps, with a line search).
        warn_independent_sampling: warn (once per parameter) when a parameter falls back to the independent sampler.
        constraints_func: deprecated in Optuna 5 and accepted as Optuna's samplers accept it: a function of a
            trial returning its constraint values (feasible when all are <= 0), stored after each trial. Prefer
            ``trial.set_constraint(name, value)`` in the objective; both are read the same way.
    """

    def __init__(
        self,
        *,
        model: str | Path | TNPModel | None = None,
        related: Any = None,
        search_space: dict[str, BaseDistribution] | None = None,
        seed: int | None = None,
        n_startup_trials: int | None = None,
        acquisition: AcquisitionKind = "ei",
        budget: int | None = None,
        independent_sampler: BaseSampler | None = None,
        transform: ValueTransformConfig = DEFAULT_TRANSFORM,
        search: CandidateSearchConfig | None = None,
        warn_independent_sampling: bool = True,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ) -> None:
        has_related = related is not None
        # By default a conditional space (seen in the trials) keeps sampling at random longer.
        self._longer_startup_if_conditional = n_startup_trials is None and not has_related
        if n_startup_trials is None:
            n_startup_trials = (0 if search_space else 1) if has_related else 4
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be at least 0, got {n_startup_trials}")
        if acquisition not in ACQUISITION_KINDS:
            raise ValueError(f"acquisition must be one of {', '.join(map(repr, ACQUISITION_KINDS))}, "
                             f"got {acquisition!r}")
        if acquisition == "nap" and (budget is None or budget < 1):
            raise ValueError("the learned acquisition ('nap') needs the study's budget: TNPSampler(budget=N_TRIALS)")
        if not isinstance(transform, ValueTransformConfig):
            raise TypeError(f"transform must be a metabo.normalise.ValueTransformConfig, got {type(transform).__name__}")
        default_search = search is None
        if search is None:
            search = TRANSFER_SEARCH if has_related else CandidateSearchConfig()
        if not isinstance(search, CandidateSearchConfig):
            raise TypeError(f"search must be a metabo.acquisition.CandidateSearchConfig, got {type(search).__name__}")
        # By default, studies with several objectives search their own way; a search the user gives is kept.
        self._search_several = replace(search, **MULTI_OBJECTIVE_SEARCH) if default_search else search
        # The deeper refinement measured a gain zero-shot; with related studies it was level or worse (What was tried).
        self._search_wide = replace(search, **WIDE_SEARCH) if default_search and not has_related else search
        # Load eagerly (once per process, cached) so a bad model path fails here, not at trial n_startup + 1.
        # Without a model named, a space wider than the shipped model's input takes its 64-input counterpart.
        self._model_by_width = model is None
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
        self._related = None if related is None else (
            related if isinstance(related, RelatedStudies) else RelatedStudies(related, transform))
        if search_space is not None:
            wrong = {n: type(d).__name__ for n, d in search_space.items() if not isinstance(d, BaseDistribution)}
            if wrong:
                raise TypeError("search_space values must be optuna.distributions (FloatDistribution, "
                                f"IntDistribution, CategoricalDistribution); got {wrong}")
        self._fixed_space = dict(search_space) if search_space else None
        self._n_startup_trials = n_startup_trials
        self._acquisition_kind = acquisition
        self._budget = budget
        self._search = search
        self._transform = transform
        self._rng = np.random.RandomState(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._warn_independent = warn_independent_sampling
        self._warned_params: set[str] = set()
        self._warned: set[str] = set()
        self._search_space = UnionSearchSpace()
        if constraints_func is not None:
            warnings.warn("TNPSampler: constraints_func is deprecated (as in Optuna 5); use "
                          "trial.set_constraint(name, value) in the objective instead.", FutureWarning, stacklevel=2)
        self._constraints_func = constraints_func

    # ------------------------------------------------------------------ model
    @property
    def model(self) -> TNPModel:
        """The model in use."""
        return self._model

    @property
    def n_startup_trials(self) -> int:
        """Completed trials sampled by the independent sampler before the model takes over."""
        return self._n_startup_trials

    # ------------------------------------------------------------------ BaseSampler API
    def reseed_rng(self) -> None:
        self._rng = np.random.RandomState()
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        space = self._fixed_space if self._fixed_space is not None else self._search_space.calculate(study)
        return {n: d for n, d in space.items() if not d.single()}  # a single value needs no model

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        trials = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING),
                                   use_cache=True)
        trials = self._in_declared_space(trials, search_space)
        complete = [t for t in trials if t.state == TrialState.COMPLETE and t.params.keys() & search_space.keys()]
        # Pruned trials are kept away from, not observed: reading them at their last reported value measured no
        # gain (BENCHMARKS.md, What was tried).
        pruned = [t for t in trials if t.state == TrialState.PRUNED and t.params.keys() & search_space.keys()]
        if len(complete) < self._n_startup_trials:
            return {}
        if (self._longer_startup_if_conditional and len(complete) < CONDITIONAL_STARTUP_TRIALS
                and any(not search_space.keys() <= t.params.keys() for t in complete)):
            return {}
        raw = np.array([t.values for t in complete], dtype=np.float64).reshape(len(complete), len(study.directions))
        # The model conditions on at least one finite value of each objective (related studies give it a context
        # before the study has any): until then, the independent sampler.
        if (len(raw) or self._related is None) and np.isfinite(raw).sum(0).min() < 1:
            return {}
        if np.any(np.abs(raw[np.isfinite(raw)]) > HUGE_VALUE):
            self._warn_once("huge", f"TNPSampler: objective values beyond {HUGE_VALUE:g} in magnitude (a penalty for "
                            "failures?) are read like float('inf'): as the worst of the other values.")
        outcomes = read_outcomes(complete, study.directions, self._transform.for_own_values(self._related is not None),
                                 self._constraint_names(complete))

        # Related studies are encoded in the choices' own order (metabo.meta.align), so then the own trials are too.
        orders = rank_choices([t.params for t in complete], outcomes.ranking(), search_space) \
            if self._related is None else None
        encoder = SearchSpaceEncoder(search_space, infer_conditions([t.params for t in (*complete, *pruned)],
                                                                    search_space), orders)
        if self._model_by_width:
            self._model = load_cached(shipped_model_path(encoder.n_dims, self._related is not None))
        x = encoder.encode_many([t.params for t in complete])
        pending = [p for p in (_pending_params(t, encoder) for t in trials
                               if t.state == TrialState.RUNNING and t.number != trial.number) if p is not None]
        x_pending = encoder.encode_many(pending).reshape(-1, x.shape[1])
        x_avoid = encoder.encode_many([t.params for t in pruned]).reshape(-1, x.shape[1])  # never proposed again
        for _ in range(1 + MAX_RESERVATION_RETRIES):
            x_next, logits, own = self._choose(encoder, x, outcomes, x_pending, x_avoid)
            params = encoder.decode(x_next)
            clashes = self._reserve(study, trial, encoder, params, x_next)
            if not len(clashes):
                break
            x_avoid = np.concatenate([x_avoid, clashes])
        else:
            x_next, params = self._nudge(study, trial, encoder, x_next)
        if len(own.y) >= 2:
            self._record_prediction(study, trial, logits, own)
        return params

    def _choose(self, encoder: SearchSpaceEncoder, x: np.ndarray, outcomes: Outcomes, x_pending: np.ndarray,
                x_avoid: np.ndarray) -> tuple[np.ndarray, torch.Tensor, Outcomes]:
        """The next point (full encoded row), its predictive logits, and the own outcomes the model read.
        ``x_pending`` join the context as fantasies; they and ``x_avoid`` are kept ``min_distance`` away."""
        x_seen = np.concatenate([x, x_pending, x_avoid])
        search_space = encoder.search_space
        keep = ctx.select_points(outcomes.ranking(), self.model.cfg.max_context, self._rng)
        x, own = x[keep], outcomes.select(keep)
        rank = own.ranking()
        dims = encoder.random_subspace_dims(self.model.cfg.max_dims, self._rng)
        first = 0 if own.n_objectives > 1 else None  # which past studies inform the first objective
        with _one_torch_thread():
            related = None
            more: list[ctx.Context | None] = []  # the other objectives' related points
            if self._related is not None:
                related = self._related.context(self.model, search_space, dims, x, own.y[:, 0], self._rng, first)
                for k in range(1, own.n_objectives):
                    other = self._related.context(self.model, search_space, dims, x, own.y[:, k], self._rng, k)
                    more.append(None if other is None else other[0])
            fixed = x[int(np.argmax(rank))] if len(rank) else (
                self._related.best_point(encoder.n_dims) if self._related is not None
                else np.full(encoder.n_dims, 0.5))
            subspace = Subspace(encoder, dims, fixed)
            warm = None
            if related is not None and len(rank) < self._related.n_warm_trials:
                warm = self._related.portfolio_point(self.model, search_space, dims, x_seen, first)
            x_next, logits = self._suggest(subspace, x, own, x_pending, x_seen, related, warm, more)
        return x_next, logits, own

    def _nudge(self, study: Study, trial: FrozenTrial, encoder: SearchSpaceEncoder, x_next: np.ndarray
               ) -> tuple[np.ndarray, dict[str, Any]]:
        """Move a suggestion that still clashes after the retries (a crowded region, many workers) to the nearest
        random nudge, in its continuous and integer coordinates, that clashes with nothing: each check follows its
        reservation by microseconds, not by a model pass, so the race closes."""
        continuous = encoder.continuous_mask()
        step = 2 * self._search.min_distance
        candidate = x_next
        for _ in range(MAX_NUDGES):
            candidate = encoder.snap(np.clip(x_next + continuous * self._rng.uniform(-step, step, len(x_next)),
                                             0.0, 1.0)[None])[0]
            params = encoder.decode(candidate)
            if not len(self._reserve(study, trial, encoder, params, candidate)):
                return candidate, params
            step = min(1.0, step * 1.5)
        return candidate, params

    def _reserve(self, study: Study, trial: FrozenTrial, encoder: SearchSpaceEncoder, params: dict[str, Any],
                 x_next: np.ndarray) -> np.ndarray:
        """Record the suggestion on the trial before Optuna stores its parameters, then return the points of other
        trials (running: their suggestion; finished since this suggestion began: their parameters) within
        ``min_distance`` of it, which this trial must avoid.

        Workers that ask at the same moment thus keep apart, although a running trial's parameters reach the
        storage only as the objective suggests them: each worker writes before it reads, so of two clashing
        workers at least the later reader sees the other (both may yield; each then avoids the other's point)."""
        internal = {name: encoder.search_space[name].to_internal_repr(value) for name, value in params.items()}
        study._storage.set_trial_system_attr(trial._trial_id, RESERVED_ATTR, internal)
        if self._search.min_distance <= 0:
            return np.empty((0, len(x_next)))
        current = study._storage.get_all_trials(study._study_id, deepcopy=False,
                                                states=(TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED))
        others = [p for p in (_pending_params(t, encoder) for t in current if t.number != trial.number)
                  if p is not None]
        x_others = encoder.encode_many(others).reshape(-1, len(x_next))
        return x_others[np.abs(x_others - x_next).max(1) < self._search.min_distance]

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if self._warn_independent and param_name not in self._warned_params and not param_distribution.single():
            n_complete = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True))
            # only then the union (every finished trial) is read again: start-up trials ask for every parameter here
            if n_complete >= max(self._n_startup_trials, 1) and param_name in self._conflicting(study):
                warnings.warn(
                    f"TNPSampler: parameter {param_name!r} is outside the space the model handles (its "
                    f"distribution changes between trials); it is sampled by "
                    f"{type(self._independent_sampler).__name__}.",
                    stacklevel=2,
                )
                self._warned_params.add(param_name)
        return self._independent_sampler.sample_independent(study, trial, param_name, param_distribution)

    def _conflicting(self, study: Study) -> set[str]:
        """Parameters whose distribution changes between the study's finished trials."""
        self._search_space.calculate(study)
        return self._search_space.conflicting

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        if self._constraints_func is not None:
            _process_constraints_after_trial(self._constraints_func, study, trial, state)
        self._independent_sampler.after_trial(study, trial, state, values)

    # ------------------------------------------------------------------ internals
    def _suggest(self, subspace: Subspace, x: np.ndarray, own: Outcomes, x_pending: np.ndarray,
                 x_seen: np.ndarray, related: tuple[ctx.Context, np.ndarray] | None, warm: np.ndarray | None,
                 more_related: Sequence[ctx.Context | None] = ()) -> tuple[np.ndarray, torch.Tensor]:
        """Encode the contexts (one per objective and constraint) and choose a point in ``subspace`` (or take the
        portfolio's ``warm`` point): the full encoded row and every output's predictive logits (B, K)."""
        x_own = subspace.restrict(x)
        per_output = [related[0] if related is not None else None, *more_related]  # objectives; constraints: none
        contexts = [ctx.join(per_output[j] if j < len(per_output) else None, *own.known_rows(j, x_own))
                    for j in range(own.y.shape[1])]
        acquisition = self._acquisition(own)
        cache = ctx.encode(self.model, contexts[0] if len(contexts) == 1 else contexts,
                           subspace.restrict(x_pending) if len(x_pending) else None)
        if warm is not None:
            x_next = subspace.encoder.snap(warm[None])[0]
        else:
            incumbents = x_own[np.argsort(-own.ranking())] if len(own.y) else x_own[:0]
            seeds = related[1] if related is not None else None
            suggestion = optimize_acquisition(cache, acquisition, subspace, incumbents,
                                              subspace.nearby(x_seen, self._search.min_distance), self._rng, seeds,
                                              self._search_for(own, len(subspace.dims)))
            if len(contexts) == 1:
                return subspace.to_full(suggestion.x[None])[0], suggestion.logits[None]
            x_next = subspace.to_full(suggestion.x[None])[0]
        chosen = torch.as_tensor(subspace.restrict(x_next[None]), dtype=torch.float32)
        with torch.no_grad():
            logits = self.model.predict_logits(cache, chosen[None])[:, 0]
        return x_next, logits

    def _search_for(self, own: Outcomes, n_dims: int) -> CandidateSearchConfig:
        """The candidate search for this suggestion in ``n_dims`` coordinates: the configured one; by default,
        with several objectives ``MULTI_OBJECTIVE_SEARCH``'s pool and refinement, and otherwise (without related
        studies) in spaces of more than ``WIDE_SPACE_DIMS`` coordinates ``WIDE_SEARCH``'s refinement."""
        if own.n_objectives > 1:
            return self._search_several
        return self._search_wide if n_dims > WIDE_SPACE_DIMS else self._search

    def _acquisition(self, own: Outcomes) -> Acquisition:
        """What to maximise: the configured acquisition for one objective; log-EHVI (ParEGO beyond three
        objectives) for several; either weighted by the probability of feasibility under constraints, or that
        probability alone before any feasible trial."""
        n_obj, feasible = own.n_objectives, own.feasible
        kind = self._acquisition_kind
        if n_obj == 1 and not own.n_constraints:
            fraction = min(1.0, len(own.y) / self._budget) if kind == "nap" else 0.0
            return make_acquisition(kind, self.model, float(np.max(own.y[:, 0])) if len(own.y) else None, fraction)
        if kind not in ("ei", "pi") or (n_obj > 1 and kind != "ei"):
            self._warn_once("acquisition", f"TNPSampler: acquisition={kind!r} applies to single-objective "
                            "unconstrained studies; this study uses (constrained) log-EI / log-EHVI.")
            kind = "ei"
        objective: Acquisition | None = None
        if feasible.any() and n_obj == 1:
            objective = make_acquisition(kind, self.model, float(np.max(own.y[feasible, 0])))
        elif feasible.any():
            measured = MeasuredObjectives(own.transforms[:n_obj], own.objectives, own.feasible_front())
            seed = self._rng.randint(2**31 - 1)
            objective = (LogExpectedHypervolumeImprovement(self.model, measured, seed)
                         if n_obj <= MAX_EHVI_OBJECTIVES else
                         LogExpectedScalarisedImprovement(self.model, measured, feasible, self._rng, seed))
        if not own.n_constraints:
            assert objective is not None  # without constraints every trial is feasible
            return objective
        return FeasibilityWeighted(self.model, objective, own.thresholds)

    def _in_declared_space(self, trials: Sequence[FrozenTrial], search_space: dict[str, BaseDistribution]
                           ) -> Sequence[FrozenTrial]:
        """With a declared ``search_space``, the trials whose parameters were suggested from its distributions;
        the others are left out of the model's data with a warning (once), rather than clipped into it."""
        if self._fixed_space is None:
            return trials
        kept = [t for t in trials
                if all(t.distributions.get(n, d) == d for n, d in search_space.items() if n in t.params)]
        if len(kept) < len(trials):
            off = next(t for t in trials if t not in kept)
            names = [n for n, d in search_space.items() if n in off.params and off.distributions[n] != d]
            self._warn_once("declared-space", f"TNPSampler: trial {off.number} suggested {names[0]!r} from "
                            f"{off.distributions[names[0]]}, but search_space declares {search_space[names[0]]}; "
                            "trials outside the declared space are left out of the model's data.")
        return kept

    def _constraint_names(self, trials: Sequence[FrozenTrial]) -> list[str]:
        """The constraints the trials report; warns once if trials report different ones."""
        names = constraint_names(trials)
        if names and any(t.constraints.keys() != set(names) for t in trials):
            self._warn_once("constraints", "TNPSampler: trials report different constraints (" + ", ".join(names)
                            + "); a constraint a trial lacks is left out of that constraint's model, and the "
                            "trial's feasibility is decided by the constraints it reports.")
        return names

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            warnings.warn(message, stacklevel=3)
            self._warned.add(key)

    def _record_prediction(self, study: Study, trial: FrozenTrial, logits: torch.Tensor, own: Outcomes) -> None:
        """Store the predicted mean and std of the chosen point (on each objective's own scale) on the trial, and
        under constraints its predicted probability of feasibility.

        The moments are taken on the model's scale and mapped back through the value transform (the mean, and
        half the distance between the images of mean - sd and mean + sd): raw-scale moments of the whole
        distribution would be dominated by the far bad tail, which a compressed or power-transformed scale maps
        to astronomically bad values. Several objectives store lists.
        """
        bar = self.model.bar
        logits = logits.double()
        means, stds = [], []
        for k in range(own.n_objectives):
            mean_t = float(bar.mean(logits[k]))
            sd_t = float(bar.variance(logits[k]).clamp_min(0.0).sqrt())
            lo, mid, hi = own.transforms[k].inverse(np.array([mean_t - sd_t, mean_t, mean_t + sd_t]))
            means.append(float(mid))
            stds.append(float(abs(hi - lo) / 2) if np.isfinite(lo) and np.isfinite(hi) else float("nan"))
        one = own.n_objectives == 1
        study._storage.set_trial_user_attr(trial._trial_id, PRED_MEAN_ATTR, means[0] if one else means)
        study._storage.set_trial_user_attr(trial._trial_id, PRED_STD_ATTR, stds[0] if one else stds)
        if own.n_constraints:
            rows = logits[own.n_objectives:]
            p = bar.probability_of_improvement(rows, torch.as_tensor(own.thresholds, dtype=torch.float64))
            study._storage.set_trial_user_attr(trial._trial_id, PRED_FEASIBILITY_ATTR, float(p.prod()))
