"""Suggestion speed with related past studies: median wall time of one ``study.ask()`` after n observations for
zero-shot metabo, ``metabo-transfer`` and Optuna's ``GPSampler`` on YAHPO validation instances.

``metabo-transfer`` is built as the benchmark builds it (``metabo.bench.optimizers``): the scenario's transfer
model (fine-tuned on rbv2_xgboost, the multi-task model on lcbench), and as related studies the random evaluations of the scenario's *train* instances (``yahpo:<scenario>``;
``reserved`` instances never join). Only ``validation`` instances are timed, so the timed instance is never
among the related studies.

For each problem, every optimiser gets a fresh study with the same n random observations (uniform in the
encoded unit cube, through ``study.add_trials``) and one untimed warm-up ask, told as failed (model loading, and
for metabo-transfer aligning the related corpus: a one-off per sampler). Then ``study.ask()`` is timed
``--repeats`` times, interleaved across the optimisers (``speed.time_asks``), each asked trial evaluated and told
(repeat r sees n + r observations).

    python benchmarks/speed_transfer.py              # lcbench/167149 and rbv2_xgboost/1049, n=50, 7 repeats, 1 thread
    python benchmarks/speed_transfer.py --cpu-time   # CPU seconds of the process: steadier on a busy machine

Writes ``<out>/speed_transfer.json`` (all times, settings, versions, load average) and ``speed_transfer.md``
(the table, with metabo-transfer's median as a multiple of zero-shot metabo's and of GP's) into ``--out``
(default ``bench_results/speed_transfer``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from speed import time_asks

OPTIMIZERS = ("metabo", "metabo-transfer", "gp")
PROBLEMS = ("yahpo/lcbench/167149", "yahpo/rbv2_xgboost/1049")


def validation_problem(name: str) -> Any:
    """The YAHPO problem ``name``; refused unless it is a validation instance (train instances are the related
    studies, reserved ones are never used)."""
    from metabo.bench.problems import get_problem

    problem = get_problem(name)
    if getattr(problem, "split", None) != "validation":
        raise SystemExit(f"{name} is not a YAHPO validation instance")
    return problem


def random_trials(problem: Any, n: int, seed: int) -> list:
    """``n`` completed trials at configurations drawn uniformly in the encoded unit cube."""
    from optuna.trial import create_trial

    from metabo.space import SearchSpaceEncoder

    space = problem.search_space()
    encoder = SearchSpaceEncoder(space)
    configs = [encoder.decode(u) for u in np.random.default_rng(seed).random((n, encoder.n_dims))]
    return [create_trial(params=c, distributions=space, value=float(problem.evaluate(c))) for c in configs]


def prepared_studies(names: list[str], problem: Any, n: int, repeats: int, seed: int) -> dict:
    """A study per optimiser with the same ``n`` observations, after one untimed ask told as failed."""
    import optuna
    from optuna.trial import TrialState

    from metabo.bench.optimizers import make_sampler

    trials = random_trials(problem, n, seed)
    studies = {}
    for name in names:
        sampler = make_sampler(name, seed, budget=n + repeats, problem=problem)
        study = optuna.create_study(direction="minimize", sampler=sampler)
        study.add_trials(trials)
        study.tell(study.ask(problem.search_space()), state=TrialState.FAIL)
        studies[name] = study
    return studies


def markdown(record: dict, argv: list[str]) -> str:
    """The medians as a Markdown table, with metabo-transfer's as a multiple of metabo's and of GP's."""
    load = record["machine"]["load_average_1_5_15"]
    clock = "CPU seconds of this process" if record["clock"] == "cpu" else "seconds"
    lines = [f"Median {clock} per `study.ask()` after n = {record['n']} random observations ({record['repeats']} "
             f"repeats, interleaved across optimisers, each trial told its value), {record['torch_threads']} torch "
             f"thread(s). Command: `python benchmarks/speed_transfer.py {' '.join(argv)}`"
             + (f"; load average at the end {load[0]:.2f}." if load else "."), ""]
    names = record["optimizers"]
    pairs = (("metabo-transfer", "metabo"), ("metabo-transfer", "gp"))
    ratios = [(a, b) for a, b in pairs if a in names and b in names]
    lines += ["| problem | " + " | ".join(names) + "".join(f" | {a} / {b}" for a, b in ratios) + " |",
              "|---|" + "---:|" * (len(names) + len(ratios))]
    for problem, medians in record["median_seconds"].items():
        row = f"| {problem} | " + " | ".join(f"{medians[name]:.4f}" for name in names)
        row += "".join(f" | {medians[a] / medians[b]:.2f}" for a, b in ratios)
        lines.append(row + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Time suggestions, print the table, write speed_transfer.json and speed_transfer.md."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--problems", default=",".join(PROBLEMS), help="comma list of YAHPO validation instances")
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma list (default metabo,metabo-transfer,gp)")
    p.add_argument("--n", type=int, default=50, help="observations before the timed asks (default 50)")
    p.add_argument("--repeats", type=int, default=7, help="timed asks per optimiser and problem (default 7)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time this process's CPU seconds instead of wall seconds (steadier on a busy machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench_results/speed_transfer", help="output folder")
    args = p.parse_args(argv)

    from metabo.bench.runner import set_threads

    set_threads(args.threads)
    import optuna
    import torch

    import metabo

    names = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    problems = [validation_problem(q.strip()) for q in args.problems.split(",") if q.strip()]
    all_seconds: dict[str, dict[str, list[float]]] = {}
    print(f"median {'CPU ' if args.cpu_time else ''}seconds per suggestion after n={args.n} "
          f"({args.repeats} repeats, interleaved), torch threads={torch.get_num_threads()}")
    print(f"{'problem':28s}  " + "  ".join(f"{name:>16}" for name in names))
    for problem in problems:
        studies = prepared_studies(names, problem, args.n, args.repeats, args.seed)
        times = time_asks(studies, problem.search_space(), problem.evaluate, args.repeats,
                          clock=time.process_time if args.cpu_time else time.perf_counter)
        all_seconds[problem.name] = times
        print(f"{problem.name:28s}  " + "  ".join(f"{statistics.median(times[name]):>16.4f}" for name in names))

    record = {
        "problems": [q.name for q in problems],
        "optimizers": names,
        "n": args.n,
        "repeats": args.repeats,
        "torch_threads": args.threads,
        "clock": "cpu" if args.cpu_time else "wall",
        "seed": args.seed,
        "median_seconds": {q: {name: statistics.median(v) for name, v in per.items()}
                           for q, per in all_seconds.items()},
        "all_seconds": all_seconds,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "optuna": optuna.__version__,
                     "metabo": metabo.__version__},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed_transfer.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "speed_transfer.md").write_text(markdown(record, argv))
    print(markdown(record, argv))
    print(f"wrote {out / 'speed_transfer.json'} and {out / 'speed_transfer.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
