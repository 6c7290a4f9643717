"""How long each stage of ``benchmarks/reproduce.sh`` takes, from the run times its stores recorded.

Sums the wall time of every stored run and reference search per results store, and divides by the number of
workers for an estimate of the stage's duration (runs are independent, so the estimate is good when there are many
more runs than workers; model training, random-median estimates and report rendering are not included).

    python benchmarks/stage_times.py --workers 2
"""

from __future__ import annotations

import argparse
import sqlite3
from contextlib import closing
from pathlib import Path

STORES = ("bbob", "families", "transfer", "meta", "meta_breadth", "meta_other", "ablation_min_distance",
          "compute_curve")


def stored_seconds(path: Path) -> tuple[int, float]:
    """Number of runs and their summed wall seconds (reference searches included)."""
    with closing(sqlite3.connect(path)) as con:
        n, runs = con.execute("SELECT COUNT(*), COALESCE(SUM(wall_seconds), 0) FROM runs").fetchone()
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        ref = con.execute("SELECT COALESCE(SUM(seconds), 0) FROM reference_runs").fetchone()[0] \
            if "reference_runs" in tables else 0.0
    return int(n), float(runs) + float(ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="bench_results", help="folder holding the stage stores")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    total = 0.0
    print(f"| stage store | runs | summed run time (h) | estimate with {args.workers} workers (h) |")
    print("|---|---|---|---|")
    for name in STORES:
        path = Path(args.results) / name / "results.db"
        if not path.exists():
            continue
        n, seconds = stored_seconds(path)
        total += seconds
        print(f"| {name} | {n} | {seconds / 3600:.2f} | {seconds / 3600 / args.workers:.2f} |")
    print(f"| all | | {total / 3600:.2f} | {total / 3600 / args.workers:.2f} |")


if __name__ == "__main__":
    main()
