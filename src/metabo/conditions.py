"""Conditional parameters, read from the trials of a define-by-run study.

Optuna declares no conditions: a parameter is conditional when some trials suggest it and others do not (an
SVM's ``C`` only when ``classifier == "svm"``). metabo models such parameters jointly with the rest:

* ``UnionSearchSpace``: every parameter any finished trial suggested (Optuna's ``IntersectionSearchSpace`` keeps
  only those every trial suggested). A parameter whose distribution changes between trials (a dynamic range) is
  left out, as the intersection leaves it out.
* ``infer_conditions``: which parameters some trials leave out (``Conditions.optional``) and, where the trials
  show one, the categorical choice that makes each of them active (``Condition``): a categorical ``parent`` whose
  choices in the trials with the parameter never occur in the trials without it.

The encoding (``metabo.space.SearchSpaceEncoder``) reads an inactive parameter's coordinates as 0, as the model
reads the unused inputs of a narrower space, and gives candidates the same form: coordinates made inactive by a
candidate's own choices are 0 and are not decoded, so Optuna never sees a value the objective will not ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import Study
from optuna.trial import TrialState


@dataclass(frozen=True)
class Condition:
    """``child`` is active exactly when ``parent`` is active and takes one of ``choices`` (Optuna choice indices)."""

    child: str
    parent: str
    choices: frozenset[int]


@dataclass(frozen=True)
class Conditions:
    """The conditional structure of a search space.

    Attributes:
        optional: parameters some trials leave out; a trial without one of them reads it as inactive.
        rules: the conditions found, a parent's own rule before its children's. An optional parameter without a
            rule is proposed in every candidate (the objective ignores it when it does not ask for it).
    """

    optional: frozenset[str] = frozenset()
    rules: tuple[Condition, ...] = field(default_factory=tuple)


NO_CONDITIONS = Conditions()


class UnionSearchSpace:
    """Every parameter the study's complete or pruned trials suggested, with its distribution (sorted by name).

    ``conflicting`` holds the names left out because their distribution differs between trials. Finished trials
    never change, so each is read once (per study, as Optuna's ``IntersectionSearchSpace`` does).
    """

    def __init__(self) -> None:
        self.conflicting: set[str] = set()
        self._study_id: int | None = None
        self._read: set[int] = set()  # numbers of the finished trials already read
        self._space: dict[str, BaseDistribution] = {}

    def calculate(self, study: Study) -> dict[str, BaseDistribution]:
        if study._study_id != self._study_id:
            self.conflicting, self._read, self._space = set(), set(), {}
            self._study_id = study._study_id
        for trial in study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED),
                                       use_cache=True):
            if trial.number in self._read:
                continue
            self._read.add(trial.number)
            for name, dist in trial.distributions.items():
                if name in self.conflicting:
                    continue
                if self._space.setdefault(name, dist) != dist:  # the same set whatever the order trials end in
                    self.conflicting.add(name)
                    del self._space[name]
        return dict(sorted(self._space.items()))


def infer_conditions(params: Sequence[Mapping[str, Any]], search_space: Mapping[str, BaseDistribution]
                     ) -> Conditions:
    """The conditional structure the trials' parameters (``params``, one dict per trial) show over
    ``search_space``. A flat space (every trial holds every parameter) gives ``NO_CONDITIONS``."""
    present = {name: np.array([name in p for p in params], dtype=bool) for name in search_space}
    optional = frozenset(name for name, holds in present.items() if not holds.all())
    if not optional:
        return NO_CONDITIONS
    # each categorical's Optuna choice index per trial (-1 where the trial lacks it)
    choices = {name: np.array([int(dist.to_internal_repr(p[name])) if name in p else -1 for p in params])
               for name, dist in search_space.items() if isinstance(dist, CategoricalDistribution)}
    found: dict[str, Condition] = {}
    for child in sorted(optional):
        best: tuple[tuple[bool, int], Condition] | None = None
        for parent, index in choices.items():
            if parent == child:
                continue
            if (present[child] & (index < 0)).any():  # the child appears without this parent: not its parent
                continue
            with_child = set(index[present[child]].tolist())
            without = set(index[~present[child] & (index >= 0)].tolist())
            if not with_child or with_child & without:
                continue
            # A parent seen without the child explains its absence; among those, the one seen with the most
            # choices explains the most.
            support = (bool(without), len(with_child) + len(without))
            if best is None or support > best[0]:
                best = (support, Condition(child, parent, frozenset(with_child)))
        if best is not None:
            found[child] = best[1]
    return Conditions(optional, _parents_first(found))


def _parents_first(found: dict[str, Condition]) -> tuple[Condition, ...]:
    """The rules ordered so that a parent's own rule comes before its children's (cycles broken by name)."""
    ordered: list[Condition] = []
    placed: set[str] = set()
    visiting: set[str] = set()

    def place(child: str) -> None:
        if child in placed or child in visiting:
            return
        visiting.add(child)
        rule = found[child]
        if rule.parent in found:
            place(rule.parent)
        visiting.discard(child)
        placed.add(child)
        ordered.append(rule)

    for child in sorted(found):
        place(child)
    return tuple(ordered)
