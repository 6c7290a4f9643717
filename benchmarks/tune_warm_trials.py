"""Choose ``RelatedStudies``' ``n_warm_trials`` on YAHPO validation instances (never reserved ones).

For each problem and seed, runs metabo with related studies (the scenario's fine-tuned model, related = its train
instances) for ``--budget`` evaluations with several ``n_warm_trials`` settings, plus the warm-start baseline, and
prints the average rank of the best value at 5 and 10 evaluations (1 = best), and with ``--store`` (a bench
store holding the problems' normalisation constants) the mean normalised regret too.

The run behind the default (``n_warm_trials=2``), on the validation instances of the breadth check except the
headline lcbench/167149, in two batches of seeds (0-1 with settings 0,1,2,3,5, then 2-5 with 0,2,3,5):

    python benchmarks/tune_warm_trials.py --problems yahpo/lcbench/167152,yahpo/lcbench/168868,\
        yahpo/lcbench/189866,yahpo/lcbench/189873,yahpo/lcbench/189906,yahpo/lcbench/7593,yahpo/rbv2_xgboost/1067,\
        yahpo/rbv2_xgboost/1497,yahpo/rbv2_xgboost/31,yahpo/rbv2_xgboost/40966 --settings 0,1,2,3,5 --seeds 2 \
        --budget 10 --store bench_results/meta_breadth/results.db
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import optuna
from scipy.stats import rankdata

from metabo.bench.optimizers import scenario_model_path
from metabo.bench.problems import get_problem
from metabo.bench.store import ResultStore
from metabo.meta import WarmStartSampler
from metabo.related import RelatedStudies
from metabo.sampler import TNPSampler


def best_curve(sampler: optuna.samplers.BaseSampler, problem, budget: int) -> np.ndarray:
    study = optuna.create_study(sampler=sampler)
    space = problem.search_space()
    values = []
    for _ in range(budget):
        trial = study.ask(space)
        value = problem.evaluate(trial.params)
        study.tell(trial, value)
        values.append(value)
    return np.minimum.accumulate(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", required=True)
    parser.add_argument("--settings", default="0,1,3,5", help="n_warm_trials values to compare")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--store", help="bench results store with the problems' f_opt and random median")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    settings = [int(s) for s in args.settings.split(",")]
    labels = [f"n_warm_trials={s}" for s in settings] + ["warmstart-tpe"]
    rows: dict[int, list[np.ndarray]] = {5: [], 10: []}
    regrets: dict[int, list[np.ndarray]] = {5: [], 10: []}
    constants = ResultStore(args.store).problem_rows() if args.store else {}
    for name in args.problems.split(","):
        problem = get_problem(name)
        scenario, space = problem.scenario, problem.search_space()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            samplers = [TNPSampler(seed=seed, model=scenario_model_path(scenario), search_space=space,
                                   related=RelatedStudies(f"yahpo:{scenario}", n_warm_trials=s)) for s in settings]
            samplers.append(WarmStartSampler(f"yahpo:{scenario}", n_warm=5, seed=seed, search_space=space))
            curves = [best_curve(s, problem, args.budget) for s in samplers]
            for k in rows:
                if k <= args.budget:
                    rows[k].append(rankdata([c[k - 1] for c in curves]))
                    if name in constants:
                        f_opt, median = constants[name]["f_opt"], constants[name]["random_median"]
                        regrets[k].append([max(0.0, (c[k - 1] - f_opt) / (median - f_opt)) for c in curves])
            print(name, seed, {lab: round(float(c[-1]), 4) for lab, c in zip(labels, curves)}, flush=True)
    for k, ranks in rows.items():
        if ranks:
            print(f"average rank at {k} evaluations:",
                  {lab: round(float(r), 2) for lab, r in zip(labels, np.mean(ranks, axis=0))})
        if regrets[k]:
            print(f"mean normalised regret at {k} evaluations ({len(regrets[k])} problem-seed pairs):",
                  {lab: round(float(r), 3) for lab, r in zip(labels, np.mean(regrets[k], axis=0))})


if __name__ == "__main__":
    main()
