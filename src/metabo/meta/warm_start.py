"""``WarmStartSampler``: a transfer baseline that starts a new study from the best configurations of related
past studies, then hands over to an ordinary sampler.

How the warm configurations are chosen (kept simple on purpose, as a baseline to beat):

1. Every related past study is aligned to the target space (``metabo.meta.align``; ``out_of_range`` rule);
   studies that cannot be aligned are skipped.
2. Studies are ranked by overlap (the fraction of target parameters they share), most similar first; ties
   keep the order of ``related`` (so list the most relevant first).
3. Candidates are taken round-robin: the best row of each study in rank order, then the second best of
   each, and so on, decoded into admissible target values; a candidate equal to an earlier one, or to the
   parameters of another trial of the study (on the parameters it holds), is skipped.

Trials numbered ``0 .. n_warm - 1`` take the next candidate; a parameter the candidate lacks (or holds with a
value the asked distribution cannot take) comes from the base sampler's ``sample_independent``. From trial
``n_warm`` on, and for warm trials once the candidates run out, everything is delegated to ``base_sampler``
(default ``TPESampler(multivariate=True, seed=seed)``), which sees the warm trials as ordinary history. The
source of each warm trial is stored as the user attribute ``metabo_warm_start``.

The target space is ``search_space`` when given (recommended). Otherwise it is learnt from the study: the
distributions of its trials so far plus the parameter being asked when a warm trial picks its candidate (at
its first sampled parameter); on trial 0 that is one parameter, so the ranking there falls back to the order
of ``related`` among the studies that hold it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from metabo.meta.align import OutOfRange, match_choice, align_corpus
from metabo.meta.corpus import Source, load_corpus
from metabo.meta.study import PastStudy
from metabo.normalise import ValueTransformConfig
from metabo.space import SearchSpaceEncoder

_RANK_ONLY = ValueTransformConfig(power=False)  # only the order of the values is used here

USER_ATTR = "metabo_warm_start"


@dataclass(frozen=True)
class WarmCandidate:
    """One warm-start configuration: aligned target values, the past row's raw values, and its origin."""

    study: str
    params: dict[str, Any]
    raw: dict[str, Any]
    value: float


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    # repr: choices may mix types that compare equal (True == 1), which must stay distinct
    return tuple(sorted((n, repr(v)) for n, v in params.items()))


def _admissible(value: Any, dist: BaseDistribution) -> tuple[bool, Any]:
    """Whether ``value`` fits ``dist`` (numeric: inside the range, snapped to an admissible value)."""
    if isinstance(dist, CategoricalDistribution):
        return match_choice(value, dist)
    if isinstance(value, (bool, str)) or value is None:
        return False, None
    v = float(value)
    if not dist.low <= v <= dist.high:  # type: ignore[attr-defined]
        return False, None
    encoder = SearchSpaceEncoder({"p": dist})
    return True, encoder.decode(encoder.encode({"p": v}))["p"]


class WarmStartSampler(BaseSampler):
    """Optuna sampler: the best configurations of related past studies first, then ``base_sampler``.

    Args:
        related: past studies, or any sources ``load_corpus`` accepts (Optuna studies, storage URLs, files,
            ``"yahpo:<scenario>"``); loaded once, here.
        base_sampler: the sampler used after the warm start and for parameters a warm configuration lacks
            (default ``TPESampler(multivariate=True, seed=seed)``).
        n_warm: how many trials (numbers ``0 .. n_warm - 1``) are warm-started.
        seed: seed of the default base sampler.
        search_space: the target space; learnt from the study when omitted (see the module docstring).
        out_of_range: alignment rule for past values outside the target range (``"drop"`` or ``"clip"``).
    """

    def __init__(self, related: Source | Iterable[Source], base_sampler: BaseSampler | None = None,
                 n_warm: int = 5, seed: int | None = None, *,
                 search_space: Mapping[str, BaseDistribution] | None = None,
                 out_of_range: OutOfRange = "drop") -> None:
        if n_warm < 0:
            raise ValueError(f"n_warm must be >= 0, not {n_warm}")
        self._studies: list[PastStudy] = load_corpus(related, target_space=search_space, out_of_range=out_of_range)
        self._base = base_sampler if base_sampler is not None else optuna.samplers.TPESampler(multivariate=True,
                                                                                               seed=seed)
        self.n_warm = n_warm
        self._space = dict(search_space) if search_space is not None else None
        self._out_of_range = out_of_range
        self._chosen: dict[int, WarmCandidate | None] = {}
        self._plans: dict[tuple[tuple[str, str], ...], list[WarmCandidate]] = {}
        self._lock = threading.Lock()

    @property
    def base_sampler(self) -> BaseSampler:
        """The sampler delegated to after the warm start."""
        return self._base

    @property
    def past_studies(self) -> list[PastStudy]:
        """The related past studies, as loaded."""
        return list(self._studies)

    def warm_plan(self, search_space: Mapping[str, BaseDistribution] | None = None) -> list[WarmCandidate]:
        """All warm-start candidates for ``search_space`` (default: the one given at construction), in order."""
        space = search_space if search_space is not None else self._space
        if not space:
            raise ValueError("warm_plan needs a search space (none was given at construction)")
        key = tuple(sorted((n, repr(d)) for n, d in space.items()))
        if key not in self._plans:
            self._plans[key] = self._build_plan(space)
        return self._plans[key]

    def _build_plan(self, space: Mapping[str, BaseDistribution]) -> list[WarmCandidate]:
        aligned, _ = align_corpus(self._studies, space, out_of_range=self._out_of_range, transform=_RANK_ONLY)
        ranked = sorted(enumerate(aligned), key=lambda ia: (-ia[1].overlap, ia[0]))
        queues = [(a, a.best_rows()) for _, a in ranked]
        plan: list[WarmCandidate] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        for r in range(max((len(q) for _, q in queues), default=0)):
            for a, rows in queues:
                if r >= len(rows):
                    continue
                i = int(rows[r])
                params = a.params(i)
                if _key(params) in seen:
                    continue
                seen.add(_key(params))
                raw = a.study.observations[int(a.rows[i])][0]
                plan.append(WarmCandidate(a.name, params, dict(raw), float(a.values[i])))
        return plan

    # ------------------------------------------------------------------ Optuna sampler interface
    def _warm(self, trial: FrozenTrial) -> bool:
        return trial.number < self.n_warm

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._warm(trial):
            return {}  # warm trials are sampled parameter by parameter (sample_independent)
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if self._warm(trial):
            return {}
        return self._base.sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if self._warm(trial):
            candidate = self._candidate(study, trial, param_name, param_distribution)
            # aligned value first; the raw past value covers parameters outside a learnt (partial) space
            for source in ((candidate.params, candidate.raw) if candidate is not None else ()):
                if param_name in source:
                    ok, admissible = _admissible(source[param_name], param_distribution)
                    if ok:
                        return admissible
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def _candidate(self, study: Study, trial: FrozenTrial, name: str,
                   dist: BaseDistribution) -> WarmCandidate | None:
        with self._lock:
            if trial.number in self._chosen:
                return self._chosen[trial.number]
            others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
            space = self._space
            if space is None:  # learn the target space from the study so far
                space = {}
                for t in others:
                    space.update(t.distributions)
                space.update(trial.distributions)
                space[name] = dist
            taken = {_key(c.params) for c in self._chosen.values() if c is not None}
            chosen = None
            for c in self.warm_plan(space):
                if _key(c.params) in taken:
                    continue
                if any(set(c.params) <= set(t.params) and _key({n: t.params[n] for n in c.params}) == _key(c.params)
                       for t in others):
                    continue
                chosen = c
                break
            self._chosen[trial.number] = chosen
        if chosen is not None:
            study._storage.set_trial_user_attr(trial._trial_id, USER_ATTR, chosen.study)
        return chosen

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: optuna.trial.TrialState,
                    values: Sequence[float] | None) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
