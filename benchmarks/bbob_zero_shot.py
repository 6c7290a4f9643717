"""Zero-shot sample efficiency on BBOB: metabo vs TPE, random search and Optuna's GP sampler.

Default (the issue's bar): all 24 BBOB functions, dimensions 2 and 5, instance 1, 50 evaluations, seeds 0..4,
optimisers metabo, tpe, random, gp. Writes ``<out>/results.db`` (resumable: rerunning skips complete runs),
``<out>/report.md``, ``<out>/summary.json`` and PNG plots, and prints mean normalised regret and average rank at
half and all of the budget (25 and 50 by default).

    python benchmarks/bbob_zero_shot.py --workers 2           # the full benchmark
    python benchmarks/bbob_zero_shot.py --quick               # smoke test: 4 functions, d2, 2 seeds, budget 15

Needs ``ioh`` (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from metabo.bench.cli import add_run_options
from metabo.bench.problems import Problem, select_problems
from metabo.bench.report import build_report, format_rows
from metabo.bench.runner import run_benchmark

QUICK_FUNCTIONS = (1, 8, 15, 21)  # sphere, Rosenbrock, rotated Rastrigin, Gallagher 101 peaks


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; --quick overrides functions, dims, seeds and budget."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--functions", type=_ints, default=list(range(1, 25)), help="BBOB function ids (default 1-24)")
    p.add_argument("--dims", type=_ints, default=[2, 5], help="dimensions (default 2,5)")
    p.add_argument("--instance", type=int, default=1, help="BBOB instance (default 1)")
    p.add_argument("--budget", type=int, default=50, help="evaluations per run (default 50)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    p.add_argument("--optimizers", default="metabo,tpe,random,gp", help="comma list (default metabo,tpe,random,gp)")
    p.add_argument("--out", default="bench_results/bbob", help="output folder (default bench_results/bbob)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: functions 1,8,15,21, d2, 2 seeds, budget 15 (into <out>-quick)")
    add_run_options(p)
    args = p.parse_args(argv)
    if args.quick:
        args.functions, args.dims, args.seeds, args.budget = list(QUICK_FUNCTIONS), [2], 2, 15
        if args.out == p.get_default("out"):
            args.out = args.out + "-quick"
    return args


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) the benchmark, write the report and print the summary; exit code 1 if runs failed."""
    args = parse_args(argv)
    out = Path(args.out)
    patterns = [f"bbob/f{f:02d}_i{args.instance}_d{d}" for d in args.dims for f in args.functions]
    problems: list[Problem] = select_problems(patterns)
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    store = out / "results.db"
    print(f"{len(problems)} problems x {len(optimizers)} optimisers ({', '.join(optimizers)}) x {args.seeds} seeds, "
          f"budget {args.budget}, {args.workers} worker(s) x {args.threads} torch thread(s); store {store}")
    start = time.perf_counter()
    counts = run_benchmark(optimizers, problems, range(args.seeds), args.budget, store, workers=args.workers,
                           threads=args.threads, progress=not args.no_progress, retry_errors=args.retry_errors)
    elapsed = time.perf_counter() - start
    print(f"runs: {counts['done']} done, {counts['skipped']} already complete, {counts['with_errors']} with "
          f"optimiser errors, {counts['failed']} failed in {elapsed:.1f} s")
    budgets = sorted({max(1, args.budget // 2), args.budget})
    report = build_report(store, budgets, out)
    groups = ["all"] + ([f"d{d}" for d in args.dims] if len(args.dims) > 1 else [])
    for group in groups:
        print(f"\n[{group}]")
        print(format_rows(report.rows, group))
    print()
    for h in report.health:
        print(f"{h['optimizer']}: {h['errors']} errors, {h['fallbacks']} random fallbacks, {h['warnings']} warnings, "
              f"median suggestion {h['suggest_median_s']:.4f} s")
    print(f"\nreport: {report.markdown_path}\nplots: {', '.join(str(p) for p in report.plots)}")
    return 1 if counts["failed"] or counts["with_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
