"""Iterative problems for benchmarks with pruners (``pruning/lcbench/<instance>``, ``pruning/toy/d<n>``).

Each problem reports a learning curve by epoch (``metabo.bench.problems.iterative``); its value is the curve's
value at the last epoch ``max_step``. Trials report at ``REPORT_EPOCHS`` (those below the last epoch, then the
last epoch): 1, 2, 3, 4, 6, 9, 13, 18, 27, 39, 52, roughly geometric (x1.4) so that a pruner gets a checkpoint
early and late, and holding Hyperband's rungs for ``min_resource=1, reduction_factor=3`` (1, 3, 9, 27), so that
its successive-halving decisions read the value at the rung's own epoch. A complete trial reports 11 times.

* ``pruning/lcbench/<instance>``: YAHPO Gym's lcbench surrogate (``metabo.meta.yahpo``; an MLP's training on an
  OpenML task, 7 hyperparameters) on a *validation* instance (``train`` and ``reserved`` instances are refused).
  The value at an epoch is the validation error ``1 - val_accuracy / 100`` (lcbench's ``val_accuracy`` is in
  percent; ``yahpo/lcbench/...`` minimises ``-val_accuracy`` at epoch 52, the same ranking). The last epoch is
  52 (lcbench's full fidelity); ``pruning/lcbench/<instance>_e<k>`` stops at epoch ``k`` (1..52) instead. The
  surrogate's curves cross: a configuration ahead early can end behind.
* ``pruning/toy/d<n>``: a closed-form learning curve on ``[0, 1]^n`` (default ``n = 3``),
  ``loss(x, t) = f(x) + A (exp(-t / tau(x)) - exp(-T / tau(x)))`` with ``f(x) = 0.1 + mean((x - 0.7)^2)``,
  ``A = 0.5``, ``tau(x) = 2 + 8 x0`` and ``T = 52``: the final value is ``f`` (known optimum 0.1 at
  ``x = 0.7``), and a small ``x0`` learns fast, so early values mislead a little (the point with ``x0 = 0``
  and the others at 0.7 looks better than the optimum from epoch 2 to 8 and is behind from epoch 9 on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution

from metabo.bench.problems.base import CHEAP_RANDOM_MEDIAN_POINTS
from metabo.bench.problems.iterative import check_steps, objective
from metabo.meta import yahpo

FAMILY = "pruning"
SCENARIO = "lcbench"
LCBENCH_MAX_EPOCH = 52
REPORT_EPOCHS = (1, 2, 3, 4, 6, 9, 13, 18, 27, 39, 52)
TOY_DIM = 3
TOY_MAX_EPOCH = 52
TOY_OPTIMUM, TOY_CENTRE, TOY_AMPLITUDE = 0.1, 0.7, 0.5


def report_steps(max_epoch: int) -> tuple[int, ...]:
    """The epochs a trial reports at when the last epoch is ``max_epoch`` (see the module docstring)."""
    if max_epoch < 1:
        raise ValueError(f"max_epoch must be at least 1, got {max_epoch}")
    return tuple(e for e in REPORT_EPOCHS if e < max_epoch) + (max_epoch,)


def available() -> bool:
    """Always: the toy needs nothing; the lcbench problems are listed only where the YAHPO data are present."""
    return True


class _Iterative:
    """Shared behaviour: the family, the final value and the Optuna objective."""

    family = FAMILY
    random_median_points = CHEAP_RANDOM_MEDIAN_POINTS

    @property
    def steps(self) -> tuple[int, ...]:
        return report_steps(self.max_step)  # type: ignore[attr-defined]

    @property
    def dim(self) -> int:
        return len(self.search_space())  # type: ignore[attr-defined]

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """The value at the last epoch."""
        return float(self.curve(params)[-1])  # type: ignore[attr-defined]

    def objective(self, trial: optuna.Trial) -> float:
        """An Optuna objective reporting every step (``optuna.TrialPruned`` when the pruner says so)."""
        return objective(self, trial)


@dataclass(frozen=True)
class LcbenchCurveProblem(_Iterative):
    """The validation error of YAHPO lcbench's surrogate by epoch on one validation instance."""

    instance: str
    max_step: int = LCBENCH_MAX_EPOCH
    known_optimum: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_step <= LCBENCH_MAX_EPOCH:
            raise ValueError(f"lcbench epochs run from 1 to {LCBENCH_MAX_EPOCH}, got max epoch {self.max_step}")
        check_steps(self.steps, self.max_step)

    @property
    def name(self) -> str:
        suffix = "" if self.max_step == LCBENCH_MAX_EPOCH else f"_e{self.max_step}"
        return f"{FAMILY}/{SCENARIO}/{self.instance}{suffix}"

    @property
    def split(self) -> str:
        return yahpo.split_of(SCENARIO, self.instance)

    @property
    def sort_key(self) -> tuple[str, str, int]:
        return (SCENARIO, self.instance, self.max_step)

    def search_space(self) -> dict[str, BaseDistribution]:
        """lcbench's 7 hyperparameters (``metabo.meta.yahpo``)."""
        return yahpo.search_space(SCENARIO)

    def _errors(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        out = yahpo.surrogate(SCENARIO, yahpo.data_dir()).predict(rows)
        errors = 1.0 - out[:, yahpo.SCENARIOS[SCENARIO].y_names.index("val_accuracy")].astype(np.float64) / 100.0
        if not np.all(np.isfinite(errors)):
            raise FloatingPointError(f"{self.name}: the surrogate returned a non-finite value")
        return errors

    def _row(self, params: Mapping[str, Any], epoch: int) -> dict[str, Any]:
        return {**yahpo.YahpoSurrogate(SCENARIO, self.instance).full_config(params), "epoch": epoch}

    def curve(self, params: Mapping[str, Any]) -> np.ndarray:
        """Validation error at every report epoch (one surrogate call)."""
        return self._errors([self._row(params, e) for e in self.steps])

    def evaluate_many(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Validation errors at the last epoch of many configurations (one surrogate call; the random median)."""
        return self._errors([self._row(c, self.max_step) for c in configs])


@dataclass(frozen=True)
class ToyCurveProblem(_Iterative):
    """The closed-form learning curve of the module docstring on ``[0, 1]^n_dims``."""

    n_dims: int = TOY_DIM
    max_step: int = TOY_MAX_EPOCH
    known_optimum: float | None = TOY_OPTIMUM

    def __post_init__(self) -> None:
        if self.n_dims < 1:
            raise ValueError(f"the toy needs at least one dimension, got {self.n_dims}")
        check_steps(self.steps, self.max_step)

    @property
    def name(self) -> str:
        return f"{FAMILY}/toy/d{self.n_dims}"

    @property
    def sort_key(self) -> tuple[str, str, int]:
        return ("toy", f"{self.n_dims:06d}", self.max_step)

    def search_space(self) -> dict[str, BaseDistribution]:
        """``x0 .. x<n-1>`` in ``[0, 1]``."""
        return {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(self.n_dims)}

    def curve_at(self, params: Mapping[str, Any], epochs: Iterable[float]) -> np.ndarray:
        """``loss(x, t)`` at any epochs ``t``."""
        x = np.array([float(params[f"x{i}"]) for i in range(self.n_dims)])
        final = TOY_OPTIMUM + float(np.mean((x - TOY_CENTRE) ** 2))
        tau = 2.0 + 8.0 * x[0]
        t = np.asarray(list(epochs), dtype=np.float64)
        return final + TOY_AMPLITUDE * (np.exp(-t / tau) - math.exp(-self.max_step / tau))

    def curve(self, params: Mapping[str, Any]) -> np.ndarray:
        """``loss(x, t)`` at every report epoch."""
        return self.curve_at(params, self.steps)

    def optimiser_params(self) -> dict[str, float]:
        """The minimiser ``x = 0.7``."""
        return {f"x{i}": TOY_CENTRE for i in range(self.n_dims)}


def problems(splits: Iterable[str] = ("validation",), allow_reserved: bool = False) -> list[Any]:
    """The toy (``pruning/toy/d3``), then the lcbench validation instances where the YAHPO data are present
    (only ``validation`` instances are ever listed, whatever ``splits`` says)."""
    out: list[Any] = [ToyCurveProblem()]
    if "validation" in set(splits) and yahpo.unavailable_reason(SCENARIO) is None:
        out += [LcbenchCurveProblem(i) for i in yahpo.instances(SCENARIO, ("validation",))]
    return out


def get_problem(name: str) -> Any:
    """``pruning/toy/d<n>`` or ``pruning/lcbench/<instance>[_e<k>]`` for a *validation* instance."""
    parts = name.split("/")
    if len(parts) == 3 and parts[:2] == [FAMILY, "toy"] and parts[2].startswith("d") and parts[2][1:].isdigit():
        return ToyCurveProblem(int(parts[2][1:]))
    if len(parts) != 3 or parts[:2] != [FAMILY, SCENARIO]:
        raise KeyError(f"unknown problem name {name!r}; expected e.g. 'pruning/lcbench/7593', "
                       f"'pruning/lcbench/7593_e27' or 'pruning/toy/d3'")
    instance, sep, epochs = parts[2].partition("_e")
    if sep and not epochs.isdigit():
        raise KeyError(f"unknown problem name {name!r}: the max epoch suffix is '_e<k>', e.g. '_e27'")
    split = yahpo.check_instance(SCENARIO, instance)  # KeyError, PermissionError (reserved) as for yahpo/...
    if split != "validation":
        raise PermissionError(f"{name}: only validation instances of {SCENARIO} are pruning problems "
                              f"({instance} is a {split!r} instance)")
    return LcbenchCurveProblem(instance, int(epochs) if sep else LCBENCH_MAX_EPOCH)
