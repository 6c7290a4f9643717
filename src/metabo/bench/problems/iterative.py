"""Iterative problems: a learning curve per configuration, reported step by step so that a pruner can stop it.

An *iterative* problem (``base.kind_of`` says ``"iterative"``) has, besides the ``Problem`` attributes,

* ``steps``: the increasing steps at which a trial reports (epochs; the last one is ``max_step``);
* ``max_step``: the last epoch; the problem's value (``evaluate``) is the curve's value there;
* ``curve(params)``: the values at every step of ``steps`` (minimised), computed at once (the benchmark
  problems are surrogates or closed forms: what is measured is which epochs a pruner lets a trial train for).

A step is an epoch: a trial stopped after reporting step ``s`` has consumed ``s`` epochs.

``iterate(problem, trial)`` plays a trial the way a user's objective does: it suggests the problem's parameters
(for a trial asked with the search space, ``study.ask(space)``, that returns the values already sampled), then
calls ``trial.report(value, step)`` at every step and ``trial.should_prune()`` after every step but the last (a
trial that has trained all its epochs completes), and returns what happened instead of raising, so the runner can
record it; ``objective(problem, trial)`` is the usual Optuna objective (``optuna.TrialPruned`` when told to
stop), which the problems expose as their ``objective`` method for ``study.optimize``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


@runtime_checkable
class IterativeProblem(Protocol):
    """What an iterative problem adds to the ``Problem`` contract (see the module docstring)."""

    @property
    def steps(self) -> tuple[int, ...]: ...

    @property
    def max_step(self) -> int: ...

    def curve(self, params: Mapping[str, Any]) -> np.ndarray:
        """Values (minimised) at every step of ``steps``."""
        ...


def is_iterative(problem: Any) -> bool:
    """Whether ``problem`` has a learning curve (``steps``, ``max_step`` and ``curve``)."""
    return all(hasattr(problem, a) for a in ("steps", "max_step", "curve"))


@dataclass(frozen=True)
class IterationOutcome:
    """How a trial of an iterative problem ended.

    Attributes:
        pruned: the pruner stopped it before ``max_step``.
        value: the value at ``last_step`` (the final value of a complete trial, the last reported value of a
            pruned one: what Optuna stores as a pruned trial's value).
        last_step: the last step reported.
        epochs: epochs consumed (``last_step``: steps are epochs).
    """

    pruned: bool
    value: float
    last_step: int
    epochs: int

    @property
    def state(self) -> str:
        """``"PRUNED"`` or ``"COMPLETE"`` (Optuna's state names)."""
        return "PRUNED" if self.pruned else "COMPLETE"


def check_steps(steps: tuple[int, ...], max_step: int) -> tuple[int, ...]:
    """``steps`` after checking that they increase from at least 1 and end at ``max_step``."""
    if not steps or steps[-1] != max_step or steps[0] < 1 or any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"steps must increase from 1 or more and end at max_step {max_step}, got {steps}")
    return steps


def suggest_params(trial: optuna.Trial, space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """Suggest every parameter of ``space`` on ``trial`` with Optuna's public ``suggest_*`` methods."""
    params: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution):
            params[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
        elif isinstance(dist, IntDistribution):
            params[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
        elif isinstance(dist, CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, dist.choices)
        else:
            raise TypeError(f"parameter {name!r}: unsupported distribution {type(dist).__name__}")
    return params


def iterate(problem: Any, trial: optuna.Trial) -> IterationOutcome:
    """Suggest ``problem``'s parameters on ``trial`` and report its curve there step by step, asking the pruner
    after every step but the last; the outcome says where it stopped (nothing is raised for pruning)."""
    values = np.asarray(problem.curve(suggest_params(trial, problem.search_space())), dtype=np.float64)
    steps = tuple(problem.steps)
    if values.shape != (len(steps),) or not np.all(np.isfinite(values)):
        raise FloatingPointError(f"{problem.name}: the curve must hold one finite value per step, got {values}")
    for step, value in zip(steps, values):
        trial.report(float(value), step)
        if step < problem.max_step and trial.should_prune():
            return IterationOutcome(True, float(value), int(step), int(step))
    return IterationOutcome(False, float(values[-1]), int(steps[-1]), int(steps[-1]))


def objective(problem: Any, trial: optuna.Trial) -> float:
    """An Optuna objective: the final value, or ``optuna.TrialPruned`` where the pruner stopped the trial."""
    outcome = iterate(problem, trial)
    if outcome.pruned:
        raise optuna.TrialPruned(f"pruned at step {outcome.last_step} (value {outcome.value:.6g})")
    return outcome.value
