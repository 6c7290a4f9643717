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
import shlex
import sys
from pathlib import Path

from metabo.bench.compose import compose
from metabo.bench.optimizers import available_optimizers
from metabo.bench.peers import envs
from metabo.bench.problems import family_available, select_problems
from metabo.bench.pruners import PRUNERS
from metabo.bench.reference import run_reference_searches
from metabo.bench.related_corpus import DEFAULT_TRACES_DIR, RELATED_CORPORA, set_related_corpus
from metabo.bench.report import build_report, format_rows
from metabo.bench.report_kinds import REGRET_LABELS, TITLES
from metabo.bench.report_pruning import format_pruning_rows
from metabo.bench.runner import run_benchmark
from metabo.meta import yahpo

DEFAULT_STORE = "bench_results/bench.db"
QUICK_STORE = "bench_results/quick/bench.db"
QUICK_OPTIMIZERS = ["random", "tpe"]
QUICK_BBOB = "bbob/f08_i1_d2"  # Rosenbrock: not solved by chance in a few evaluations
QUICK_YAHPO = "yahpo/lcbench/*"  # the first validation instance is used
QUICK_SEEDS, QUICK_BUDGET = 2, 12
BENCH_USER_ERRORS = (envs.PeerEnvError,)  # besides ValueError, KeyError, OSError: a peer environment not built


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _int_list(text: str) -> list[int]:
    return [positive_int(t) for t in text.split(",") if t.strip()]


def _str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _quick_problems() -> list:
    """One BBOB problem plus one YAHPO validation instance where the YAHPO data and onnxruntime are present."""
    chosen = select_problems([QUICK_BBOB])
    if family_available("yahpo"):
        chosen += select_problems([QUICK_YAHPO])[:1]
    return chosen


def _select(args: argparse.Namespace) -> list:
    if args.yahpo_data:
        yahpo.set_data_dir(args.yahpo_data)  # also exported to spawned workers
    set_related_corpus(args.related_corpus, args.traces_dir)  # likewise
    if args.quick:
        return _quick_problems()
    return select_problems(args.problems, instances=args.instances, splits=args.yahpo_splits,
                           allow_reserved=args.allow_reserved)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.setup_peers:
        envs.setup(args.setup_peers)
        return 0
    if args.quick:
        args.optimizers, args.seeds, args.budget = QUICK_OPTIMIZERS, QUICK_SEEDS, QUICK_BUDGET
        args.store = args.store or QUICK_STORE
    args.store = args.store or DEFAULT_STORE
    problems = _select(args)  # a selection mistake raises KeyError, ValueError, PermissionError, ...: one line
    if args.list:
        print("\n".join(f"{p.name}  (dim {p.dim})" for p in problems))
        return 0
    if args.reference:
        counts = run_reference_searches(problems, args.store, args.reference_evals, range(args.seeds),
                                        progress=not args.no_progress)
        print(f"reference searches: {counts['done']} done, {counts['skipped']} already stored, "
              f"{counts['exact']} problem(s) with a known optimum skipped (store: {args.store})")
        return 0
    counts = run_benchmark(args.optimizers, problems, range(args.seeds), args.budget, args.store,
                           workers=args.workers, threads=args.threads, progress=not args.no_progress,
                           retry_errors=args.retry_errors, pruner=args.pruner)
    with_pruner = f" with pruner {args.pruner}" if args.pruner != "none" else ""
    print(f"{len(problems)} problems x {len(args.optimizers)} optimisers x {args.seeds} seeds{with_pruner}: "
          f"{counts['done']} runs done, {counts['skipped']} already complete, {counts['with_errors']} with "
          f"optimiser errors (stored, not complete: rerun to retry), {counts['failed']} failed (not stored) "
          f"(store: {args.store})")
    if args.quick:
        report = build_report(args.store, None, Path(args.store).parent / "report", n_boot=200)
        print(format_rows(report.rows))
        print(f"report: {report.markdown_path}")
    return 1 if counts["failed"] or counts["with_errors"] else 0


def _titled_paths(items: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        title, sep, path = item.rpartition("=")
        if not sep or not title or not Path(path.partition("::")[0]).exists():
            raise ValueError(f"{option} wants TITLE=PATH with an existing path, got {item!r}")
        pairs.append((title, path))  # a store path may carry a '::optimisers' suffix
    return pairs


def _cmd_report(args: argparse.Namespace) -> int:
    if args.compose:
        stores = _titled_paths(args.section, "--section")
        fragments = _titled_paths(args.fragment, "--fragment")
        if not stores and not fragments:
            raise ValueError("--compose needs at least one --section or --fragment")
        command = "metabo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        intro = Path(args.intro[1:]).read_text().strip() if args.intro.startswith("@") else args.intro
        path = compose(args.compose, stores, fragments, command, args.budgets, intro)
        print(f"wrote {path}")
        return 0

    if not Path(args.store).is_file():
        raise ValueError(f"{args.store}: no such results store")
    report = build_report(args.store, args.budgets, args.out, baseline=args.baseline)
    if report.rows:
        print(format_rows(report.rows))
    for section in report.sections:  # constrained and multi-objective problems
        print(f"{TITLES[section.kind]} ({REGRET_LABELS[section.kind].removeprefix('mean ')}):")
        print(format_rows(section.rows))
    if report.pruning is not None:  # iterative problems, by pruner
        print("Iterative problems with pruners (regret of the best complete value; epochs, fraction pruned and "
              "near-pruned re-proposals per run):")
        print(format_pruning_rows(report.pruning.rows))
    for r in report.paired:
        if r.group == "all":
            print(f"{r.budget:>5}  {r.optimizer} - {r.baseline}: {r.difference:+.4f} "
                  f"[{r.difference_ci[0]:+.4f}, {r.difference_ci[1]:+.4f}] over {r.n_pairs} pairs, "
                  f"{r.wins} wins / {r.losses} losses")
    for h in report.health:
        if h["errors"] or h["fallbacks"]:
            print(f"{h['optimizer']}: {h['errors']} errors, {h['fallbacks']} random fallbacks (see the report)")
    print(f"report: {report.markdown_path}; plots: {', '.join(str(p) for p in report.plots)}")
    return 0


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``bench`` and the committed benchmark scripts: workers, threads, progress."""
    parser.add_argument("--workers", type=positive_int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per worker (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--retry-errors", action="store_true", default=True,
                        help="rerun stored runs in which the optimiser raised (the default: they are not complete "
                             "results)")
    parser.add_argument("--keep-errors", dest="retry_errors", action="store_false",
                        help="count stored runs in which the optimiser raised as complete (do not rerun them)")


def register_cli(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``bench`` and ``report`` subcommands to ``subparsers``."""
    bench = subparsers.add_parser("bench", help="run optimisers on benchmark problems into a SQLite store")
    bench.add_argument("--problems", default="bbob/*_d2",
                       help="comma-separated glob patterns over names like bbob/f01_i1_d2, yahpo/lcbench/7593, "
                            "sklearn/..., highs/..., constrained/... (constraints), mo/... (several objectives), "
                            "pruning/... (learning curves for --pruner), conditional/... (define-by-run conditional "
                            "spaces), categorical/... (a 50-choice categorical), sparse/... (few active parameters) "
                            "(default 'bbob/*_d2')")
    bench.add_argument("--instances", type=_int_list, default=[1], help="BBOB instances for globs (default 1)")
    bench.add_argument("--yahpo-data", default=None,
                       help="YAHPO data folder (default: $METABO_YAHPO_DATA, else ../shared/data/yahpo)")
    bench.add_argument("--yahpo-splits", type=_str_list, default=["validation"],
                       help="YAHPO splits to select from (default validation; 'train' for meta-training)")
    bench.add_argument("--allow-reserved", action="store_true",
                       help="allow YAHPO 'reserved' instances (independent evaluation only; never by default)")
    bench.add_argument("--quick", action="store_true",
                       help=f"CI smoke profile: random and tpe on {QUICK_BBOB} plus one YAHPO validation instance "
                            f"(if its data is present), {QUICK_SEEDS} seeds, budget {QUICK_BUDGET}; writes the store "
                            f"(default {QUICK_STORE}) and a report beside it; ignores --problems/--optimizers")
    bench.add_argument("--reference", action="store_true",
                       help="instead of optimisers, run a long reference search (TPE + local search) per selected "
                            "problem without a known optimum and per seed, and store its best value")
    bench.add_argument("--reference-evals", type=positive_int, default=None,
                       help="evaluations per reference search (default 5000 for cheap problems)")
    bench.add_argument("--related-corpus", choices=RELATED_CORPORA, default="random",
                       help="past studies of the transfer optimisers on YAHPO problems: random evaluations of the "
                            "train instances (default), optimisation traces on them (--traces-dir), or both")
    bench.add_argument("--traces-dir", default=None,
                       help=f"folder of <scenario>.db trace corpora (default {DEFAULT_TRACES_DIR}; "
                            "benchmarks/trace_corpus.py writes them)")
    bench.add_argument("--list", action="store_true", help="print the selected problems and exit")
    bench.add_argument("--setup-peers", type=_str_list, default=None, metavar="NAMES",
                       help="build the virtualenvs of external peers (hebo, smac, botorch) and exit; they are "
                            "otherwise built on first use")
    bench.add_argument("--optimizers", type=_str_list, default=["metabo", "tpe", "random", "gp"],
                       help=f"comma list from {', '.join(available_optimizers())}, metabo:<model path> "
                            "(default metabo,tpe,random,gp)")
    bench.add_argument("--seeds", type=positive_int, default=5, help="seeds 0..N-1 (default 5)")
    bench.add_argument("--budget", type=positive_int, default=50, help="evaluations per run (default 50)")
    bench.add_argument("--store", default=None, help=f"SQLite results file (default {DEFAULT_STORE})")
    bench.add_argument("--pruner", choices=PRUNERS, default="none",
                       help="Optuna pruner of every study (iterative problems, pruning/..., only): median "
                            "(MedianPruner, 5 startup trials, 4 warm-up epochs), hyperband (HyperbandPruner, "
                            "min_resource 1, max_resource the last epoch, reduction factor 3) or none (default); "
                            "runs are stored as <optimizer>@<pruner>")
    add_run_options(bench)
    bench.set_defaults(func=_cmd_bench)

    report = subparsers.add_parser("report", help="summarise a results store as Markdown and PNG plots")
    report.add_argument("--store", default=DEFAULT_STORE, help=f"SQLite results file (default {DEFAULT_STORE})")
    report.add_argument("--budgets", type=_int_list, default=None,
                        help="comma list of evaluation counts (default: half and all of the common budget)")
    report.add_argument("--out", default="bench_results/report", help="output folder (default bench_results/report)")
    report.add_argument("--baseline", default=None, metavar="OPTIMIZER",
                        help="also report every other optimiser's paired difference in regret from this one")
    report.add_argument("--compose", metavar="FILE", default=None,
                        help="instead, write one document (e.g. BENCHMARKS.md) from the --section stores and "
                             "--fragment Markdown files, with command, date, machine and versions")
    report.add_argument("--section", action="append", default=[], metavar="TITLE=STORE",
                        help="with --compose: a store rendered as a section (repeatable, in order); end STORE with "
                             "'::opt1,opt2' to report only those optimisers, then '::5,10,50' for its budgets and "
                             "'::OPT' for paired differences from OPT (fields may be empty)")
    report.add_argument("--fragment", action="append", default=[], metavar="TITLE=FILE",
                        help="with --compose: a Markdown file included as a section after the stores (repeatable)")
    report.add_argument("--intro", default="", help="with --compose: a paragraph under the title (@FILE: read it "
                        "from FILE)")
    report.set_defaults(func=_cmd_report)
