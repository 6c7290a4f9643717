"""Benchmark instrument: problems, optimisers, a resumable runner with a SQLite store, and reports.

Typical use (see ``benchmarks/bbob_zero_shot.py`` for the committed command)::

    from metabo.bench import select_problems, run_benchmark, build_report
    problems = select_problems("bbob/*_d2")
    run_benchmark(["metabo", "tpe"], problems, seeds=range(5), budget=50, store="bench.db")
    build_report("bench.db", budgets=[25, 50], out_dir="bench_results/x")

Constrained (``constrained/...``) and multi-objective (``mo/...``) problems run the same way; their runs store
every objective and constraint value, and the report gives them sections of their own (``report_kinds``).
Iterative problems (``pruning/...``) run with a pruner, ``run_benchmark(..., pruner="median")`` (``pruners``),
and get a section per pruner (``report_pruning``).

``ioh`` (the ``bench`` extra) is needed only for BBOB problems.
"""

from metabo.bench.optimizers import available_optimizers, make_sampler
from metabo.bench.problems import Problem, get_problem, normalised_regret, select_problems
from metabo.bench.report import build_report
from metabo.bench.runner import run_benchmark

__all__ = [
    "Problem",
    "available_optimizers",
    "build_report",
    "get_problem",
    "make_sampler",
    "normalised_regret",
    "run_benchmark",
    "select_problems",
]
