"""Suggestion time with several objectives and constraints (issue 17's speed bar), metabo against Optuna's GP.

For each study shape (one objective; two objectives and one constraint) and each sampler, a study is filled with
``--trials`` random trials of a ``--dims``-dimensional problem, then ``--suggestions`` suggestions are timed
(each told a value, so the study grows by one per suggestion). Both samplers run in the same process, one after
the other, shape by shape. Prints a markdown table of median seconds per suggestion and the ratios.

    python benchmarks/speed_outputs.py --trials 100 --dims 8 --suggestions 15 --out bench_results/speed_outputs/speed.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import optuna
import torch

import metabo

SHAPES = {"1 objective": (1, 0), "2 objectives + 1 constraint": (2, 1)}


def _values(x: np.ndarray, n_objectives: int, n_constraints: int) -> tuple[list[float], list[float]]:
    objectives = [float(((x - (0.3 + 0.4 * k)) ** 2).sum()) for k in range(n_objectives)]
    constraints = [float(x.sum() - 0.5 * len(x) + 0.1 * k) for k in range(n_constraints)]
    return objectives, constraints


def _suggestion_times(sampler: optuna.samplers.BaseSampler, shape: tuple[int, int], n_trials: int, dims: int,
                      n_suggestions: int, seed: int) -> list[float]:
    n_objectives, n_constraints = shape
    rng = np.random.RandomState(seed)
    space = {f"x{j}": optuna.distributions.FloatDistribution(0.0, 1.0) for j in range(dims)}
    study = optuna.create_study(directions=["minimize"] * n_objectives, sampler=sampler)
    for _ in range(n_trials):
        x = rng.rand(dims)
        objectives, constraints = _values(x, n_objectives, n_constraints)
        attrs = {f"constraints:c{k}": v for k, v in enumerate(constraints)}
        study.add_trial(optuna.trial.create_trial(values=objectives, params=dict(zip(space, map(float, x))),
                                                  distributions=space, system_attrs=attrs))
    times = []
    for _ in range(n_suggestions):
        trial = study.ask()
        start = time.perf_counter()
        x = np.array([trial.suggest_float(name, 0.0, 1.0) for name in space])
        times.append(time.perf_counter() - start)
        objectives, constraints = _values(x, n_objectives, n_constraints)
        for k, v in enumerate(constraints):
            trial.set_constraint(f"c{k}", v)
        study.tell(trial, objectives)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--dims", type=int, default=8)
    parser.add_argument("--suggestions", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the process (GP uses them)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(args.threads)
    samplers = {"metabo": lambda: metabo.TNPSampler(seed=args.seed),
                "gp": lambda: optuna.samplers.GPSampler(seed=args.seed)}
    medians: dict[tuple[str, str], float] = {}
    for shape_name, shape in SHAPES.items():
        for name, make in samplers.items():
            times = _suggestion_times(make(), shape, args.trials, args.dims, args.suggestions, args.seed)
            medians[shape_name, name] = float(np.median(times))
    single, multi = medians["1 objective", "metabo"], medians["2 objectives + 1 constraint", "metabo"]
    lines = [f"Median seconds per suggestion at n = {args.trials}, D = {args.dims}, {args.threads} threads, "
             f"{args.suggestions} suggestions each:", "", "| study | metabo | GPSampler | metabo / GP |",
             "|---|---:|---:|---:|"]
    for shape_name in SHAPES:
        m, g = medians[shape_name, "metabo"], medians[shape_name, "gp"]
        lines.append(f"| {shape_name} | {m:.3f} | {g:.3f} | {m / g:.2f} |")
    lines += ["", f"metabo, 2 objectives + 1 constraint / 1 objective: {multi / single:.2f}"]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)

if __name__ == "__main__":
    main()
