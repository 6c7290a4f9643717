"""Suggestion speed: median wall time of one ``study.ask()`` after n observations, for metabo, TPE and GP.

Problem: 8-D Hartmann-6 (the first 6 parameters) plus 2 dummy parameters, all in [0, 1]. For each optimiser and
each n (default 10, 50, 100, 200, 400), a fresh study is given n uniform random observations through
``study.add_trial`` (the same points for every optimiser), then ``study.ask()`` is timed ``--repeats`` times;
after each timed ask the trial is told as failed, so every repeat sees the same n completed observations.
Before any timing, each optimiser does one untimed warm-up ask (imports, model loading). Torch threads are
set explicitly (``--threads``, default 2).

    python benchmarks/speed.py                      # prints a table; writes speed.json and speed.png
    python benchmarks/speed.py --threads 1 --repeats 3 --n 10,50

Writes ``<out>/speed.json`` (all times, settings, versions, load average) and ``<out>/speed.png``
(median time vs n, log y) into ``--out`` (default ``bench_results/speed``).
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


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def time_suggestions(name: str, n: int, points: np.ndarray, repeats: int, seed: int) -> list[float]:
    """Seconds per ``study.ask()`` for optimiser ``name`` after the first ``n`` rows of ``points`` are told."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from metabo.bench.optimizers import make_sampler

    names = [f"x{i}" for i in range(DIM)]
    space = {k: FloatDistribution(0.0, 1.0) for k in names}
    study = optuna.create_study(direction="minimize", sampler=make_sampler(name, seed))
    for row in points[:n]:
        params = dict(zip(names, (float(v) for v in row)))
        study.add_trial(create_trial(params=params, distributions=space, value=hartmann6_plus_dummies(row)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trial = study.ask(space)
        times.append(time.perf_counter() - t0)
        study.tell(trial, state=TrialState.FAIL)
    return times


def plot(results: dict[str, dict[int, list[float]]], path: Path, threads: int) -> None:
    """Median seconds per suggestion vs n, log y, one line per optimiser."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, per_n in results.items():
        ns = sorted(per_n)
        ax.plot(ns, [statistics.median(per_n[n]) for n in ns], marker="o", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("observations n")
    ax.set_ylabel("median seconds per suggestion")
    ax.set_title(f"8-D Hartmann-6 + 2 dummies, {threads} torch thread(s)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(record: dict, args: argparse.Namespace) -> str:
    """The timing table as a Markdown fragment (for BENCHMARKS.md), with command, threads and load."""
    medians = record["median_seconds"]
    names = list(medians)
    ns = list(next(iter(medians.values())))
    load = record["machine"]["load_average_1_5_15"]
    lines = [f"Median seconds per `study.ask()` ({record['repeats']} repeats) after n observations, "
             f"{record['problem']}, {record['torch_threads']} torch threads. "
             f"Command: `python benchmarks/speed.py {' '.join(sys.argv[1:])}`"
             + (f"; load average at the end {load[0]:.2f}." if load else "."), "",
             "| n | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    lines += [f"| {n} | " + " | ".join(f"{medians[name][n]:.4f}" for name in names) + " |" for n in ns]
    return "\n".join(lines) + "\n\n![median seconds per suggestion](speed.png)\n"


def main(argv: list[str] | None = None) -> int:
    """Time suggestions, print the table, write speed.json and speed.png."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=_ints, default=[10, 50, 100, 200, 400], help="observation counts")
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma list (default metabo,tpe,gp)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed suggestions per (optimiser, n) (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench_results/speed", help="output folder (default bench_results/speed)")
    args = p.parse_args(argv)

    from metabo.bench.runner import set_threads

    set_threads(args.threads)
    import optuna
    import torch

    import metabo

    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    points = np.random.default_rng(args.seed).uniform(size=(max(args.n), DIM))
    for name in optimizers:  # warm-up: imports, model load, first-call overheads
        time_suggestions(name, 10, points, 1, args.seed)

    results: dict[str, dict[int, list[float]]] = {name: {} for name in optimizers}
    print(f"median seconds per suggestion ({args.repeats} repeats), D={DIM}, torch threads={torch.get_num_threads()}")
    print(f"{'n':>5}  " + "  ".join(f"{name:>12}" for name in optimizers))
    for n in args.n:
        for name in optimizers:
            results[name][n] = time_suggestions(name, n, points, args.repeats, args.seed)
        print(f"{n:>5}  " + "  ".join(f"{statistics.median(results[name][n]):>12.4f}" for name in optimizers))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "problem": "hartmann6 + 2 dummy dims, [0,1]^8",
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "seed": args.seed,
        "median_seconds": {name: {str(n): statistics.median(t) for n, t in per_n.items()}
                           for name, per_n in results.items()},
        "all_seconds": {name: {str(n): t for n, t in per_n.items()} for name, per_n in results.items()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "optuna": optuna.__version__,
                     "metabo": metabo.__version__},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }
    (out / "speed.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(results, out / "speed.png", torch.get_num_threads())
    (out / "speed.md").write_text(markdown(record, args))
    print(f"wrote {out / 'speed.json'}, {out / 'speed.md'} and {out / 'speed.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
