"""Suggestion speed: median wall time of one ``study.ask()`` after n observations, for metabo, TPE and GP.

Problems (8-D unless ``--dims`` says otherwise, every parameter in [0, 1]): ``hartmann6`` (Hartmann-6 on the first 6
parameters plus dummy parameters) and ``sumsq`` (the sum of squares around 0.3). For each torch thread count,
problem and n (default 10, 50, 100, 200, 400), every optimiser gets a fresh study with the same n uniform random
observations (through ``study.add_trial``); then ``study.ask()`` is timed ``--repeats`` times, *interleaved* across
the optimisers (one ask of each in turn), so a change of load on a shared machine hits them alike. After each timed
ask the trial is told as failed, so every repeat sees the same n completed observations. Before any timing, each
optimiser does one untimed warm-up ask (imports, model loading).

    python benchmarks/speed.py                                   # prints tables; writes speed.json/.md/.png
    python benchmarks/speed.py --threads 1,2 --problems hartmann6,sumsq --n 200 --repeats 15
    python benchmarks/speed.py --threads 1 --problems sumsq --dims 64 --n 50,100 --out bench_results/speed_d64

Writes ``<out>/speed.json`` (all times, settings, versions, load average), ``<out>/speed.md`` (tables with
metabo's time as a fraction of GP's) and ``<out>/speed.png`` (median time vs n, log y) into ``--out`` (default
``bench_results/speed``).
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
from typing import Callable

import numpy as np

HARTMANN6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN6_A = np.array([
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
], dtype=np.float64)
HARTMANN6_P = 1e-4 * np.array([
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
], dtype=np.float64)
DIM = 8
OPTIMIZERS = ("metabo", "tpe", "gp")


def hartmann6_plus_dummies(x: np.ndarray) -> float:
    """Hartmann-6 on ``x[:6]`` (minimum about -3.32237); ``x[6:]`` are ignored."""
    z = np.asarray(x, dtype=np.float64)[:6]
    inner = np.sum(HARTMANN6_A * (z - HARTMANN6_P) ** 2, axis=1)
    return float(-np.sum(HARTMANN6_ALPHA * np.exp(-inner)))


def sum_of_squares(x: np.ndarray) -> float:
    """sum((x - 0.3)^2), minimum 0."""
    return float(np.sum((np.asarray(x, dtype=np.float64) - 0.3) ** 2))


PROBLEMS = {"hartmann6": hartmann6_plus_dummies, "sumsq": sum_of_squares}


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _studies(names: list[str], n: int, points: np.ndarray, problem: str, seed: int) -> dict:
    """A fresh study per optimiser, each told the first ``n`` rows of ``points`` (one column per parameter)."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from metabo.bench.optimizers import make_sampler

    keys = [f"x{i}" for i in range(points.shape[1])]
    space = {k: FloatDistribution(0.0, 1.0) for k in keys}
    f = PROBLEMS[problem]
    trials = [create_trial(params=dict(zip(keys, (float(v) for v in row))), distributions=space, value=f(row))
              for row in points[:n]]
    studies = {}
    for name in names:
        studies[name] = optuna.create_study(direction="minimize", sampler=make_sampler(name, seed))
        studies[name].add_trials(trials)
    return studies


def time_interleaved(names: list[str], n: int, points: np.ndarray, problem: str, repeats: int, seed: int,
                     tell: str = "value") -> dict[str, list[float]]:
    """Seconds per ``study.ask()`` per optimiser after n observations, one ask of each optimiser in turn.

    ``tell="value"``: each asked point is evaluated and told, as in a study (repeat r sees n + r observations);
    ``tell="fail"``: it is told as failed, so every repeat sees the same n observations.
    """
    from optuna.distributions import FloatDistribution

    dim = points.shape[1]
    space = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(dim)}
    studies = _studies(names, n, points, problem, seed)
    f = PROBLEMS[problem]
    return time_asks(studies, space, lambda params: f(np.array([params[f"x{i}"] for i in range(dim)])), repeats,
                     tell)


def time_asks(studies: dict, space: dict, evaluate: Callable[[dict], float], repeats: int, tell: str = "value",
              clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per ``study.ask(space)`` of each named study, ``repeats`` rounds of one ask of each in turn;
    each asked trial is told ``evaluate(params)`` (``tell="value"``) or failed (``tell="fail"``). ``clock``:
    wall time by default; ``time.process_time`` counts this process's CPU time (steadier on a shared machine)."""
    from optuna.trial import TrialState

    times: dict[str, list[float]] = {name: [] for name in studies}
    for _ in range(repeats):
        for name, study in studies.items():
            t0 = clock()
            trial = study.ask(space)
            times[name].append(clock() - t0)
            if tell == "value":
                study.tell(trial, evaluate(trial.params))
            else:
                study.tell(trial, state=TrialState.FAIL)
    return times


def plot(results: dict, path: Path) -> None:
    """Median seconds per suggestion vs n, log y: one panel per (threads, problem), one line per optimiser."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, p) for t in results for p in results[t]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (threads, problem) in zip(axes[0], panels):
        for name, per_n in results[threads][problem].items():
            ns = sorted(per_n, key=int)
            ax.plot([int(n) for n in ns], [statistics.median(per_n[n]) for n in ns], marker="o", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("observations n")
        ax.set_title(f"{problem}, {threads} thread(s)")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("median seconds per suggestion")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(record: dict, argv: list[str]) -> str:
    """The timing tables as a Markdown fragment (for BENCHMARKS.md), with command, threads, load and the ratio
    of metabo's median time to GP's."""
    load = record["machine"]["load_average_1_5_15"]
    told = ("Each asked trial was evaluated and told, as in a study (repeat r sees n + r observations)."
            if record.get("tell", "value") == "value" else
            "Each asked trial was told as failed, so every ask sees the same n observations (GPSampler's kernel fit "
            "then starts from hyperparameters already fitted to exactly these data, which a study never meets).")
    lines = [f"Median seconds per `study.ask()` ({record['repeats']} repeats, interleaved across optimisers) after "
             f"n observations, {record.get('dims', DIM)}-D problems. {told} metabo computes its suggestions on one "
             f"torch thread whatever the setting. Command: `python benchmarks/speed.py {' '.join(argv)}`"
             + (f"; load average at the end {load[0]:.2f}." if load else "."), ""]
    for threads, per_problem in record["median_seconds"].items():
        for problem, medians in per_problem.items():
            names = list(medians)
            ratio = "metabo" in names and "gp" in names
            lines += [f"**{problem}, {threads} torch thread(s)**", "",
                      "| n | " + " | ".join(names) + (" | metabo / gp |" if ratio else " |"),
                      "|---:|" + "---:|" * (len(names) + ratio)]
            for n in medians[names[0]]:
                row = f"| {n} | " + " | ".join(f"{medians[name][n]:.4f}" for name in names) + " |"
                if ratio:
                    row += f" {medians['metabo'][n] / medians['gp'][n]:.2f} |"
                lines.append(row)
            lines.append("")
    return "\n".join(lines) + "\n![median seconds per suggestion](speed.png)\n"


def main(argv: list[str] | None = None) -> int:
    """Time suggestions, print the tables, write speed.json, speed.md and speed.png."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=_ints, default=[10, 50, 100, 200, 400], help="observation counts")
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma list (default metabo,tpe,gp)")
    p.add_argument("--threads", type=_ints, default=[2], help="torch thread counts, comma list (default 2)")
    p.add_argument("--problems", default="hartmann6", help=f"comma list of {', '.join(PROBLEMS)}")
    p.add_argument("--repeats", type=int, default=5, help="timed suggestions per (optimiser, n) (default 5)")
    p.add_argument("--tell", choices=("value", "fail"), default="value",
                   help="tell each timed trial its value, as a study does (default), or fail it (same n each repeat)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dims", type=int, default=DIM, help=f"parameters per problem (default {DIM})")
    p.add_argument("--out", default="bench_results/speed", help="output folder (default bench_results/speed)")
    args = p.parse_args(argv)

    from metabo.bench.runner import set_threads

    set_threads(max(args.threads))
    import optuna
    import torch

    import metabo

    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    problems = [q.strip() for q in args.problems.split(",") if q.strip()]
    unknown = [q for q in problems if q not in PROBLEMS]
    if unknown:
        p.error(f"unknown problem(s) {unknown}; choose from {', '.join(PROBLEMS)}")
    if args.dims < 6 and "hartmann6" in problems:
        p.error("hartmann6 needs --dims 6 or more")
    points = np.random.default_rng(args.seed).uniform(size=(max(args.n), args.dims))
    time_interleaved(optimizers, 10, points, problems[0], 1, args.seed)  # warm-up: imports, model load

    results: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for problem in problems:
            per_name: dict[str, dict[str, list[float]]] = {name: {} for name in optimizers}
            print(f"{problem}: median seconds per suggestion ({args.repeats} repeats, interleaved), D={args.dims}, "
                  f"torch threads={torch.get_num_threads()}")
            print(f"{'n':>5}  " + "  ".join(f"{name:>12}" for name in optimizers))
            for n in args.n:
                times = time_interleaved(optimizers, n, points, problem, args.repeats, args.seed, args.tell)
                for name in optimizers:
                    per_name[name][str(n)] = times[name]
                print(f"{n:>5}  " + "  ".join(f"{statistics.median(times[name]):>12.4f}" for name in optimizers))
            results.setdefault(str(threads), {})[problem] = per_name

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "problems": problems,
        "dims": args.dims,
        "torch_threads": args.threads,
        "repeats": args.repeats,
        "tell": args.tell,
        "seed": args.seed,
        "median_seconds": {t: {q: {name: {n: statistics.median(v) for n, v in per_n.items()}
                                   for name, per_n in per_name.items()} for q, per_name in per_q.items()}
                           for t, per_q in results.items()},
        "all_seconds": results,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "optuna": optuna.__version__,
                     "metabo": metabo.__version__},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }
    (out / "speed.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(results, out / "speed.png")
    (out / "speed.md").write_text(markdown(record, argv))
    print(f"wrote {out / 'speed.json'}, {out / 'speed.md'} and {out / 'speed.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
