"""A study's outcomes on the model's scale: one output per objective and per constraint.

The model is agnostic to what its values mean, so every objective and every constraint is an output of its own:
the same encoded inputs, its own values through its own ``ObjectiveTransform`` (larger is better), its own
context. A constraint ``c`` (Optuna's convention: feasible when ``c <= 0``) is transformed as a minimised value,
so it holds exactly when its output is at least ``threshold = transform(0)``; every step of the transform is
strictly increasing, so the model's ``P(output >= threshold)`` is exactly its probability of feasibility.

Constraints come from ``FrozenTrial.constraints``: Optuna 5's ``trial.set_constraint`` and the list that
``constraints_func`` samplers store. Bad values get a documented fallback, never a crash: +-inf objective or
constraint values, and values beyond ``HUGE_VALUE`` in magnitude, become the worst other value of that output; a constraint a trial did not report (or stored
as NaN) is missing for that trial: that output's context leaves the trial out, and its feasibility is decided by
the constraints it did report (as ``optuna.study`` does).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from metabo.normalise import ObjectiveTransform, ValueTransformConfig

HUGE_VALUE = 1e150  # larger magnitudes are read like +-inf


@dataclass
class Outcomes:
    """The complete trials' outcomes, on the model's scale.

    Attributes:
        y: (n, n_objectives + n_constraints) values, larger is better; NaN where a trial lacks a constraint.
        n_objectives: the first ``n_objectives`` columns are objectives, the rest constraints.
        thresholds: (n_constraints,) a constraint holds where its column is at least its threshold.
        feasible: (n,) whether every constraint the trial reported holds.
        transforms: each column's transform (raw values <-> model scale).
    """

    y: np.ndarray
    n_objectives: int
    thresholds: np.ndarray
    feasible: np.ndarray
    transforms: list[ObjectiveTransform]

    def select(self, rows: np.ndarray) -> "Outcomes":
        """The outcomes of ``rows`` only (the transforms stay those fitted on every trial)."""
        return Outcomes(self.y[rows], self.n_objectives, self.thresholds, self.feasible[rows], self.transforms)

    def known_rows(self, column: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``x`` and of the ``column``'s values where that value is known (every row for objectives;
        ``x`` itself is returned when nothing is missing, as its memory layout decides float rounding)."""
        known = ~np.isnan(self.y[:, column])
        return (x, self.y[:, column]) if known.all() else (x[known], self.y[known, column])

    @property
    def n_constraints(self) -> int:
        return self.y.shape[1] - self.n_objectives

    @property
    def objectives(self) -> np.ndarray:
        """(n, n_objectives) objective values."""
        return self.y[:, : self.n_objectives]

    def violation(self) -> np.ndarray:
        """(n,) total shortfall of the constraints below their thresholds, on the model's scale (0: feasible)."""
        short = np.clip(self.thresholds - self.y[:, self.n_objectives:], 0.0, None)
        return np.nan_to_num(short, nan=0.0).sum(1)

    def ranking(self) -> np.ndarray:
        """(n,) one score per trial, larger is better: the objective (several objectives: minus the
        non-dominated sorting rank), with every infeasible trial below every feasible one, ordered by violation.
        It orders incumbents and chooses which own points fit a full context."""
        score = self.y[:, 0].copy() if self.n_objectives == 1 else -pareto_ranks(self.objectives).astype(float)
        if self.n_constraints and not self.feasible.all():
            floor = score[self.feasible].min() if self.feasible.any() else 0.0
            score = np.where(self.feasible, score, floor - 1.0 - self.violation())
        return score

    def feasible_front(self) -> np.ndarray:
        """Indices of the feasible trials no other feasible trial dominates (several objectives)."""
        idx = np.flatnonzero(self.feasible)
        return idx[pareto_ranks(self.objectives[idx]) == 0] if len(idx) else idx


def pareto_ranks(y: np.ndarray) -> np.ndarray:
    """Non-dominated sorting of ``y`` (n, m), larger is better: 0 for the Pareto front, 1 for the front of the
    rest, and so on."""
    n = len(y)
    ranks = np.full(n, -1)
    if not n:
        return ranks
    # dominated[i, j]: j dominates i
    dominated = np.all(y[None, :, :] >= y[:, None, :], -1) & np.any(y[None, :, :] > y[:, None, :], -1)
    rank, left = 0, np.ones(n, dtype=bool)
    while left.any():
        front = left & ~(dominated & left[None, :]).any(1)
        ranks[front] = rank
        left &= ~front
        rank += 1
    return ranks


def constraint_names(trials: Sequence[FrozenTrial]) -> list[str]:
    """Every constraint name the trials report, in first-seen order."""
    names: dict[str, None] = {}
    for t in trials:
        names.update(dict.fromkeys(t.constraints))
    return list(names)


def read_outcomes(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection], config: ValueTransformConfig,
                  constraints: Sequence[str] = ()) -> Outcomes:
    """The outcomes of complete ``trials`` (objectives in ``directions``, then the named ``constraints``)."""
    raw_objectives = np.array([t.values for t in trials], dtype=np.float64).reshape(len(trials), len(directions))
    columns, thresholds, transforms = [], [], []
    for j, direction in enumerate(directions):
        values = _finite_or_worst(raw_objectives[:, j], maximize=direction == StudyDirection.MAXIMIZE)
        transform = ObjectiveTransform(direction == StudyDirection.MAXIMIZE, config)
        columns.append(transform.fit(values).transform(values))
        transforms.append(transform)
    raw_constraints = np.array([[_constraint_value(t, name) for name in constraints] for t in trials],
                               dtype=np.float64).reshape(len(trials), len(constraints))
    for j in range(len(constraints)):
        values = raw_constraints[:, j]
        known = ~np.isnan(values)
        transform = ObjectiveTransform(False, config)
        column = np.full(len(trials), np.nan)
        if known.any():
            finite = _finite_or_worst(values[known], maximize=False)
            transform.fit(finite)
            column[known] = transform.transform(finite)
        columns.append(column)
        thresholds.append(float(transform.transform(np.zeros(1))[0]))
        transforms.append(transform)
    feasible = np.all(np.isnan(raw_constraints) | (raw_constraints <= 0), axis=1)
    return Outcomes(np.stack(columns, 1), len(directions), np.array(thresholds), feasible, transforms)


def _constraint_value(trial: FrozenTrial, name: str) -> float:
    value = trial.constraints.get(name)
    try:
        return float("nan") if value is None else float(value)
    except (TypeError, ValueError):
        warnings.warn(f"TNPSampler: trial {trial.number} stores constraint {name!r} as {value!r}, not a number; "
                      "it is treated as missing.", stacklevel=3)
        return float("nan")


def _finite_or_worst(values: np.ndarray, maximize: bool) -> np.ndarray:
    """``values`` with +-inf, and values beyond ``HUGE_VALUE`` in magnitude (penalties such as 1e300, which would
    leave the others no resolution), replaced by the worst other value (unchanged if there is none)."""
    finite = np.isfinite(values) & (np.abs(values) <= HUGE_VALUE)
    if finite.all() or not finite.any():
        return values
    worst = values[finite].min() if maximize else values[finite].max()
    return np.where(finite, values, worst)
