"""Shared by the TNPSampler tests: a fast sampler factory, objectives, and the record `spy_encode` (conftest.py)
keeps of what the model reads."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import optuna

import metabo
from metabo import context as ctx
from metabo.acquisition import CandidateSearchConfig

N_STARTUP = 4
FAST_SEARCH = CandidateSearchConfig(n_candidates=128, refine_steps=3)


def make_sampler(model, seed=0, **kw) -> metabo.TNPSampler:
    """A TNPSampler with 4 start-up trials and a small candidate pool (fast with the tiny model)."""
    kw.setdefault("n_startup_trials", N_STARTUP)
    kw.setdefault("search", FAST_SEARCH)
    return metabo.TNPSampler(model=model, seed=seed, **kw)


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -2.0, 3.0)
    y = trial.suggest_float("y", 1e-3, 10.0, log=True)
    return (x - 0.7) ** 2 + (math.log10(y) - 0.2) ** 2


def params_seq(study) -> list[dict]:
    return [t.params for t in study.trials]


@dataclass
class Encoded:
    """One call of ``metabo.context.encode``: the context the model read and the pending points."""

    context: ctx.Context
    x_pending: np.ndarray | None

    @property
    def own(self) -> np.ndarray:
        return self.context.task == ctx.OWN_SLOT

    @property
    def x_own(self) -> np.ndarray:
        return self.context.x[self.own]

    @property
    def y_own(self) -> np.ndarray:
        return self.context.y[self.own]

    @property
    def n_related(self) -> int:
        return int((~self.own).sum())


@dataclass
class EncodedOutputs:
    """One call of ``metabo.context.encode`` with every output's context (objectives, then constraints)."""

    contexts: list[ctx.Context]
    x_pending: np.ndarray | None

    def __len__(self) -> int:
        return len(self.contexts)

    def __iter__(self):
        return iter(self.contexts)

    @property
    def n_pending(self) -> int:
        return 0 if self.x_pending is None else len(self.x_pending)
