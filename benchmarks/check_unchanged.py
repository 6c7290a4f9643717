"""Behaviour check for refactors: the same seeds must give the same trials.

Runs metabo on 8 BBOB problems x 2 seeds (budget 30; 2-D to 20-D, so the wide model is covered),
``metabo-subspace`` (the 16-input model on the 20-D one: the random-subspace path) x 2 seeds, ``metabo-transfer``
on 2 YAHPO validation instances x 2 seeds (budget 20), and metabo on a small mixed space (log float, stepped
float, int, categorical; budget 25, 2 seeds). Every trial's parameters and
value are written to a JSON file.

    python benchmarks/check_unchanged.py --record benchmarks/unchanged_reference.json   # before a change
    python benchmarks/check_unchanged.py --check benchmarks/unchanged_reference.json    # after it

``--check`` exits 1 and lists the first differing trial of each run when anything differs. Runs use one torch
thread by default (``--threads``); metabo computes its suggestions on one thread whatever the setting, so the
same trials must come out with any thread count. The reference committed beside this script was recorded at
commit b7a0381 (the lcbench metabo-transfer runs changed there by design: the multi-task model reads the past
studies; at 78a66ff the metabo-transfer runs had changed by design too, with the corner candidates and the
ranking kept across suggestions; every other run is as recorded before).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

BBOB = ("bbob/f01_i1_d2", "bbob/f03_i1_d5", "bbob/f07_i1_d2", "bbob/f10_i1_d5", "bbob/f15_i1_d10",
        "bbob/f20_i1_d20", "bbob/f21_i1_d5", "bbob/f24_i1_d2")
YAHPO = ("yahpo/lcbench/167149", "yahpo/rbv2_xgboost/1049")
SEEDS = (0, 1)


class MixedSpace:
    """A cheap minimised function over a mixed space (every encoding kind the sampler snaps)."""

    name = "mixed"

    def search_space(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        return {"lr": FloatDistribution(1e-4, 1.0, log=True), "frac": FloatDistribution(0.0, 1.0, step=0.1),
                "depth": IntDistribution(1, 12), "kind": CategoricalDistribution(("a", "b", "c"))}

    def evaluate(self, p) -> float:
        shift = {"a": 0.3, "b": 0.0, "c": 0.6}[p["kind"]]
        return (math.log10(p["lr"]) + 2.0) ** 2 + (p["frac"] - 0.7) ** 2 + 0.05 * (p["depth"] - 5) ** 2 + shift


def run(optimizer: str, problem, seed: int, budget: int) -> list[dict]:
    import optuna

    from metabo.bench.optimizers import make_sampler

    try:
        sampler = make_sampler(optimizer, seed, budget=budget, problem=problem)
    except TypeError:  # registries that take no problem for this name
        sampler = make_sampler(optimizer, seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    space = problem.search_space()
    trials = []
    for _ in range(budget):
        trial = study.ask(space)
        value = float(problem.evaluate(trial.params))
        study.tell(trial, value)
        trials.append({"params": {k: trial.params[k] for k in sorted(trial.params)}, "value": value})
    return trials


def collect() -> dict[str, list[dict]]:
    from metabo.bench.problems import get_problem

    jobs = [("metabo", get_problem(n), 30) for n in BBOB]
    jobs += [("metabo-subspace", get_problem("bbob/f20_i1_d20"), 30)]
    jobs += [("metabo-transfer", get_problem(n), 20) for n in YAHPO]
    jobs += [("metabo", MixedSpace(), 25)]
    out = {}
    for optimizer, problem, budget in jobs:
        for seed in SEEDS:
            t0 = time.perf_counter()
            out[f"{optimizer}|{problem.name}|{seed}"] = run(optimizer, problem, seed, budget)
            print(f"{optimizer:16s} {problem.name:28s} seed {seed}: {time.perf_counter() - t0:5.1f} s", flush=True)
    return out


def compare(reference: dict[str, list[dict]], current: dict[str, list[dict]]) -> list[str]:
    problems = []
    for key, ref_trials in reference.items():
        trials = current.get(key)
        if trials is None:
            problems.append(f"{key}: missing")
            continue
        for i, (a, b) in enumerate(zip(ref_trials, trials)):
            if a != b:
                problems.append(f"{key}: trial {i} differs: {a} != {b}")
                break
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", type=Path, help="write the trials to this JSON file")
    group.add_argument("--check", type=Path, help="compare the trials with this JSON file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)

    import optuna
    import torch

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    current = collect()
    if args.record:
        args.record.write_text(json.dumps(current, indent=1, sort_keys=True))
        print(f"recorded {len(current)} runs to {args.record}")
        return 0
    reference = json.loads(args.check.read_text())
    problems = compare(reference, json.loads(json.dumps(current)))
    n_trials = sum(len(t) for t in reference.values())
    if problems:
        print(f"{len(problems)} of {len(reference)} runs differ:")
        print("\n".join(problems))
        return 1
    print(f"identical: {len(reference)} runs, {n_trials} trials")
    return 0


if __name__ == "__main__":
    sys.exit(main())
