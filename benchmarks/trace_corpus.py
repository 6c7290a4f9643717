"""Past studies as users have them: optimisation traces on YAHPO *train* instances, in an Optuna storage.

A user's past studies are optimisation traces (dense near the good regions, sparse elsewhere), not the uniform
random evaluations of ``yahpo:<scenario>``. This script runs one study per train instance of a scenario, the
optimiser taking turns by instance (Optuna's multivariate TPE, Optuna's GPSampler, zero-shot metabo), and stores
each as an Optuna study named ``yahpo/<scenario>/<instance>`` (user attribute ``optimizer``) in
``<out>/<scenario>.db``, a source that ``related=``, ``metabo finetune --storage`` and ``metabo bench``'s
``metabo-transfer-traces:<out>`` read. Validation and reserved instances are never run.

    python benchmarks/trace_corpus.py --scenario lcbench                # bench_results/traces/lcbench.db
    python benchmarks/trace_corpus.py --scenario rbv2_xgboost --trials 100 --seed 0 --out bench_results/traces

Seeded (each study's sampler seed comes from ``--seed`` and the instance) and resumable: a study that already
holds ``--trials`` complete trials is kept, an incomplete one is run again from scratch.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

OPTIMIZERS = ("tpe", "gp", "metabo")


def make_sampler(name: str, seed: int):
    """The sampler of one trace: Optuna's TPE (multivariate) or GP, or zero-shot metabo."""
    from optuna.samplers import GPSampler, TPESampler

    from metabo import TNPSampler

    if name == "tpe":
        return TPESampler(multivariate=True, seed=seed)
    if name == "gp":
        return GPSampler(seed=seed)
    return TNPSampler(seed=seed)


def run_trace(storage: str, scenario: str, instance: str, optimizer: str, trials: int, seed: int) -> None:
    """One study of ``trials`` evaluations of ``optimizer`` on a train instance, stored under its name."""
    import optuna

    from metabo.meta import yahpo

    problem = yahpo.YahpoSurrogate(scenario, instance)
    name = problem.name
    try:
        optuna.delete_study(study_name=name, storage=storage)  # an incomplete earlier attempt
    except KeyError:
        pass
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize",
                                sampler=make_sampler(optimizer, seed))
    study.set_user_attr("optimizer", optimizer)
    study.set_user_attr("seed", seed)
    space = problem.search_space()
    for _ in range(trials):
        trial = study.ask(space)
        study.tell(trial, float(problem.evaluate(trial.params)))


def complete_studies(storage: str, trials: int) -> set[str]:
    """Names of the studies in ``storage`` that already hold ``trials`` complete trials."""
    import optuna

    done = set()
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) >= trials:
            done.add(summary.study_name)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", required=True, help="YAHPO scenario (lcbench, rbv2_xgboost, rbv2_rpart)")
    p.add_argument("--trials", type=int, default=100, help="evaluations per study (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench_results/traces",
                   help="folder of <scenario>.db (default bench_results/traces)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)

    import optuna
    from tqdm import tqdm

    from metabo.bench.runner import set_threads
    from metabo.meta import yahpo

    set_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    instances = yahpo.instances(args.scenario, ("train",))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / (args.scenario + '.db')}"
    done = complete_studies(storage, args.trials)
    t0 = time.perf_counter()
    for i, instance in enumerate(tqdm(instances, desc=f"{args.scenario} traces", unit="study")):
        if f"yahpo/{args.scenario}/{instance}" in done:
            continue
        seed = zlib.crc32(f"{args.seed}/{args.scenario}/{instance}".encode()) % 2**31
        run_trace(storage, args.scenario, instance, OPTIMIZERS[i % len(OPTIMIZERS)], args.trials, seed)
    print(f"{len(instances)} train instances of {args.scenario} in {storage} "
          f"({len(instances) - len(done)} run now, {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
