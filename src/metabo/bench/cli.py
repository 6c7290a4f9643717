"""``bench`` and ``report`` subcommands, added to an argparse subparsers object by ``register_cli``.

Each subcommand sets ``func`` (taking the parsed namespace, returning an exit code), like metabo's other
subcommands::

    sub = parser.add_subparsers(dest="command")
    register_cli(sub)
    args = parser.parse_args()
    raise SystemExit(args.func(args))
"""

from __future__ import annotations

import argparse

DEFAULT_STORE = "bench_results/bench.db"


def _int_list(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _cmd_bench(args: argparse.Namespace) -> int:
    from metabo.bench.problems import select_problems
    from metabo.bench.runner import run_benchmark

    problems = select_problems(args.problems, instances=args.instances)
    counts = run_benchmark(args.optimizers, problems, range(args.seeds), args.budget, args.store,
                           workers=args.workers, threads=args.threads, progress=not args.no_progress,
                           retry_errors=args.retry_errors)
    print(f"{len(problems)} problems x {len(args.optimizers)} optimisers x {args.seeds} seeds: "
          f"{counts['done']} runs done, {counts['skipped']} already complete, {counts['failed']} failed "
          f"(store: {args.store})")
    return 1 if counts["failed"] else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from metabo.bench.report import build_report, format_rows

    report = build_report(args.store, args.budgets, args.out)
    print(format_rows(report.rows))
    for h in report.health:
        if h["errors"] or h["fallbacks"]:
            print(f"{h['optimizer']}: {h['errors']} errors, {h['fallbacks']} random fallbacks (see the report)")
    print(f"report: {report.markdown_path}; plots: {', '.join(str(p) for p in report.plots)}")
    return 0


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``bench`` and the committed benchmark scripts: workers, threads, progress."""
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--retry-errors", action="store_true",
                        help="rerun stored runs in which the optimiser raised (default: complete runs are skipped)")


def register_cli(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``bench`` and ``report`` subcommands to ``subparsers``."""
    from metabo.bench.optimizers import available_optimizers

    bench = subparsers.add_parser("bench", help="run optimisers on benchmark problems into a SQLite store")
    bench.add_argument("--problems", default="bbob/*_d2",
                       help="comma-separated glob patterns over names like bbob/f01_i1_d2 (default 'bbob/*_d2')")
    bench.add_argument("--instances", type=_int_list, default=[1], help="BBOB instances for globs (default 1)")
    bench.add_argument("--optimizers", type=_str_list, default=["metabo", "tpe", "random", "gp"],
                       help=f"comma list from {', '.join(available_optimizers())}, metabo:<model path> "
                            "(default metabo,tpe,random,gp)")
    bench.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    bench.add_argument("--budget", type=int, default=50, help="evaluations per run (default 50)")
    bench.add_argument("--store", default=DEFAULT_STORE, help=f"SQLite results file (default {DEFAULT_STORE})")
    add_run_options(bench)
    bench.set_defaults(func=_cmd_bench)

    report = subparsers.add_parser("report", help="summarise a results store as Markdown and PNG plots")
    report.add_argument("--store", default=DEFAULT_STORE, help=f"SQLite results file (default {DEFAULT_STORE})")
    report.add_argument("--budgets", type=_int_list, default=None,
                        help="comma list of evaluation counts (default: half and all of the common budget)")
    report.add_argument("--out", default="bench_results/report", help="output folder (default bench_results/report)")
    report.set_defaults(func=_cmd_report)
