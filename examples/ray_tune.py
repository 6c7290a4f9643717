"""Ray Tune with metabo: ``OptunaSearch(sampler=TNPSampler())`` running 4 trials at a time.

Ray Tune's ``OptunaSearch`` keeps an Optuna study in the driver and asks it for each new trial; trials still
running are RUNNING trials of that study, so TNPSampler treats them as pending points and keeps new suggestions
``min_distance`` away from them (the same mechanism as several Optuna workers on one storage).

    pip install 'ray[tune]'        # or: pip install -e '.[reliability]'
    python examples/ray_tune.py    # 20 trials, 4 concurrent; about a minute

Prints a summary and, with ``--out FILE``, writes it as JSON (``benchmarks/reliability.py`` runs this as a check):
trials terminated, errors, the best loss (the objective's optimum is 0.398), how many trials ran at once at most,
and the smallest max-norm distance between two configurations in the unit cube.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from itertools import combinations
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report sent from an example

import optuna  # noqa: E402
import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.search import ConcurrencyLimiter  # noqa: E402
from ray.tune.search.optuna import OptunaSearch  # noqa: E402

from metabo import TNPSampler  # noqa: E402

BOUNDS = {"x": (-5.0, 10.0), "y": (0.0, 15.0), "lr": (1e-4, 1e-1)}


def loss(config: dict[str, float]) -> float:
    """Branin(x, y) + (log10(lr) + 2.5)^2: minimum 0.398."""
    x, y, lr = config["x"], config["y"], config["lr"]
    branin = ((y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2
              + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)
    return branin + (math.log10(lr) + 2.5) ** 2


def trainable(config: dict[str, float]) -> None:
    """One trial: a short 'training' and its loss, with when it ran."""
    start = time.time()
    time.sleep(0.5)
    tune.report({"loss": loss(config), "start": start, "end": time.time()})


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


def min_gap(configs: list[dict[str, float]]) -> float | None:
    """Smallest max-norm distance between two configurations in the unit cube (lr on a log scale)."""
    def unit(c: dict[str, float]) -> list[float]:
        (xl, xh), (yl, yh), (ll, lh) = BOUNDS["x"], BOUNDS["y"], BOUNDS["lr"]
        return [(c["x"] - xl) / (xh - xl), (c["y"] - yl) / (yh - yl),
                (math.log(c["lr"]) - math.log(ll)) / (math.log(lh) - math.log(ll))]

    points = [unit(c) for c in configs]
    return min((max(abs(a - b) for a, b in zip(p, q)) for p, q in combinations(points, 2)), default=None)


def run(trials: int, concurrent: int, seed: int) -> dict[str, Any]:
    """Tune ``loss`` with TNPSampler through Ray Tune; the summary."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ray.init(num_cpus=concurrent, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    storage = tempfile.mkdtemp(prefix="metabo-ray-")
    try:
        search = OptunaSearch(sampler=TNPSampler(seed=seed), metric="loss", mode="min")
        tuner = tune.Tuner(
            trainable,
            param_space={"x": tune.uniform(*BOUNDS["x"]), "y": tune.uniform(*BOUNDS["y"]),
                         "lr": tune.loguniform(*BOUNDS["lr"])},
            tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(search, max_concurrent=concurrent),
                                        num_samples=trials),
            run_config=tune.RunConfig(storage_path=storage, name="metabo", verbose=0),
        )
        start = time.monotonic()
        results = tuner.fit()
        elapsed = time.monotonic() - start
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
    done = [r for r in results if r.error is None and "loss" in r.metrics]
    return {"trials": trials, "concurrent": concurrent, "terminated": len(done), "errors": results.num_errors,
            "best_loss": min(r.metrics["loss"] for r in done) if done else None,
            "max_running_at_once": max_overlap([(r.metrics["start"], r.metrics["end"]) for r in done]),
            "min_gap": min_gap([r.config for r in done]), "elapsed_s": elapsed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--concurrent", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the summary here as JSON")
    args = p.parse_args()
    summary = run(args.trials, args.concurrent, args.seed)
    print(json.dumps(summary, indent=1))
    if args.out is not None:
        args.out.write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
