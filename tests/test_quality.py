"""Optimisation quality with the shipped model: must beat random search on a smooth function.

Kept moderately cheap: a 3-D quadratic bowl, 25 trials, 5 seeds.
"""

from __future__ import annotations

import numpy as np
import optuna

import metabo

N_TRIALS = 25
SEEDS = range(5)


def bowl(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(3)])
    return float(np.sum((x - np.array([1.3, -0.8, 2.1])) ** 2))


def _best(sampler) -> float:
    study = optuna.create_study(sampler=sampler)
    study.optimize(bowl, n_trials=N_TRIALS)
    return study.best_value


def test_beats_random_search_on_a_bowl():
    """Mean best value over 5 seeds (same seeds, so the random start-up trials are shared) must be lower."""
    tnp = [_best(metabo.TNPSampler(seed=s)) for s in SEEDS]
    rnd = [_best(optuna.samplers.RandomSampler(seed=s)) for s in SEEDS]
    wins = sum(t < r for t, r in zip(tnp, rnd))
    assert np.mean(tnp) < np.mean(rnd), f"TNP {np.round(tnp, 3)} vs random {np.round(rnd, 3)} ({wins} wins of 5)"
