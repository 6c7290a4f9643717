"""Calibration of metabo's predicted probability of feasibility on the constrained problems (issue 17).

Runs TNPSampler on each constrained problem for ``--trials`` trials and ``--seeds`` seeds, reads the probability
of feasibility it predicted for each suggestion (the trial's ``metabo_predicted_feasibility`` user attribute) and
compares it with the feasibility observed, in bins of the predicted probability. Prints a markdown table.

    python benchmarks/feasibility_calibration.py --seeds 3 --trials 30
"""

from __future__ import annotations

import argparse

import numpy as np
import optuna

import metabo
from metabo.bench.problems import get_problem
from metabo.sampler import PRED_FEASIBILITY_ATTR

PROBLEMS = ("constrained/pressure_vessel", "constrained/gardner", "constrained/branin_disc", "constrained/welded_beam")
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def predictions(name: str, seed: int, n_trials: int) -> list[tuple[float, bool]]:
    """(predicted probability of feasibility, feasible) of each model-suggested trial of one run."""
    problem = get_problem(name)
    study = optuna.create_study(sampler=metabo.TNPSampler(seed=seed))
    for _ in range(n_trials):
        trial = study.ask(problem.search_space())
        outcome = problem.evaluate_outcome(trial.params)
        for k, value in enumerate(outcome.constraints):
            trial.set_constraint(f"c{k}", value)
        study.tell(trial, outcome.values[0])
    return [(t.user_attrs[PRED_FEASIBILITY_ATTR], all(c <= 0 for c in t.constraints.values()))
            for t in study.trials if PRED_FEASIBILITY_ATTR in t.user_attrs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = np.array([pair for name in PROBLEMS for seed in range(args.seeds)
                     for pair in predictions(name, seed, args.trials)], dtype=float).reshape(-1, 2)
    print(f"{len(rows)} model-suggested trials ({', '.join(PROBLEMS)}; {args.seeds} seeds, {args.trials} trials):\n")
    print("| predicted probability of feasibility | trials | mean predicted | observed feasible |")
    print("|---|---:|---:|---:|")
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        inside = (rows[:, 0] >= lo) & ((rows[:, 0] < hi) | (hi == BINS[-1]))
        if inside.any():
            print(f"| [{lo:.1f}, {hi:.1f}{']' if hi == BINS[-1] else ')'} | {int(inside.sum())} | "
                  f"{rows[inside, 0].mean():.2f} | {rows[inside, 1].mean():.2f} |")


if __name__ == "__main__":
    main()
