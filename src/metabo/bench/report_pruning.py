"""Report section for runs on iterative problems (``pruning/...``), one block per pruner.

A run stored as ``<optimizer>@<pruner>`` (``metabo.bench.pruners``) is reported under its pruner with its plain
optimiser name, so that optimisers are compared (ranks, paired differences) only with others under the same
pruner. After ``n`` trials, counting every trial, pruned or not:

* regret of the best *complete* value, ``min(1, max(0, (best_complete - f_opt) / (random_median - f_opt)))``,
  1 while no trial has completed (``scores.feasible_regret_curve`` with "complete" as "feasible"); f_opt and the
  random median are the problem's (final values only; the same for every pruner);
* epochs: the epochs the ``n`` trials consumed together (a complete lcbench trial: 52);
* pruned: the fraction of the ``n`` trials that were pruned;
* re-proposed pruned points: trials within 0.01 (max-norm in the unit cube) of an earlier pruned trial, and exact
  duplicates of any earlier trial (``metabo.bench.reproposals``); n/a where the problem's search space cannot be
  built here (e.g. no YAHPO data).

Means over the problem-seed pairs every optimiser of the pruner has run, with bootstrap 95% CIs (regret, epochs);
paired differences in regret from the baseline optimiser under the same pruner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from metabo.bench.pruners import PRUNERS, split_run_name
from metabo.bench.report import (Curves, PairedRow, SummaryRow, _bootstrap_ci, _fmt_ci, paired_differences,
                                 paired_lines, plot, summarise)
from metabo.bench.reproposals import find_reproposals
from metabo.bench.scores import feasible_regret_curve
from metabo.bench.store import ResultStore

Pair = tuple[str, int]
TITLE = "Iterative problems with pruners"
REGRET_LABEL = "mean regret of the best complete value"


@dataclass
class PrunerRuns:
    """One pruner's runs: regret curves (in ``curves``) and, per optimiser and pair, cumulative epochs, pruned
    trials, near-pruned re-proposals and duplicates after each trial (re-proposals NaN where unknown)."""

    pruner: str
    curves: Curves
    epochs: dict[str, dict[Pair, np.ndarray]] = field(default_factory=dict)
    pruned: dict[str, dict[Pair, np.ndarray]] = field(default_factory=dict)
    near_pruned: dict[str, dict[Pair, np.ndarray]] = field(default_factory=dict)
    duplicates: dict[str, dict[Pair, np.ndarray]] = field(default_factory=dict)

    def restrict(self, optimizers: Sequence[str]) -> None:
        """Keep only ``optimizers`` (plain names)."""
        for table in (self.curves.best, self.epochs, self.pruned, self.near_pruned, self.duplicates):
            for name in [o for o in table if o not in optimizers]:
                del table[name]


def _suite(name: str) -> str:
    """``pruning/lcbench/7593`` -> ``lcbench``: the report's groups."""
    parts = name.split("/")
    return parts[1] if len(parts) > 2 else parts[0]


def _search_space(name: str) -> dict | None:
    from metabo.bench.problems import get_problem

    try:
        return get_problem(name, allow_reserved=True).search_space()
    except (KeyError, ImportError, OSError, PermissionError, ValueError):
        return None


def load_pruning(store: str | Path) -> list[PrunerRuns]:
    """Every run of the store's iterative problems (the largest budget per run name/problem/seed), by pruner."""
    db = ResultStore.existing(store)
    references = {name: row for name, row in db.references().items() if row["kind"] == "iterative"}
    chosen: dict[tuple[str, str, int], dict[str, object]] = {}
    for r in db.rows("SELECT * FROM runs ORDER BY budget"):
        if r["problem"] in references:
            chosen[(r["optimizer"], r["problem"], r["seed"])] = dict(r)
    spaces = {name: _search_space(name) for name in references}
    by_pruner: dict[str, PrunerRuns] = {}
    constants = {name: {**row, "reference_f_opt": row["f_opt"], "reference_median": row["random_median"],
                        "f_opt": 0.0, "random_median": 1.0, "suite": _suite(name)}
                 for name, row in references.items()}
    for (run, prob, seed), meta in chosen.items():
        optimizer, pruner = split_run_name(run)
        if pruner not in by_pruner:
            by_pruner[pruner] = PrunerRuns(pruner, Curves({}, constants, [], group_key="suite"))
        pr = by_pruner[pruner]
        pr.curves.runs.append(meta)
        rows = list(db.rows("SELECT value, state, epochs, params_json FROM trials WHERE optimizer = ? AND problem = ? "
                            "AND seed = ? AND budget = ? ORDER BY trial", (run, prob, seed, meta["budget"])))
        ref = references[prob]
        was_pruned = [r["state"] == "PRUNED" for r in rows]
        pair = (prob, seed)
        pr.curves.best.setdefault(optimizer, {})[pair] = feasible_regret_curve(
            [r["value"] for r in rows], [not p for p in was_pruned], float(ref["f_opt"]), float(ref["random_median"]))
        pr.epochs.setdefault(optimizer, {})[pair] = np.cumsum([r["epochs"] or 0 for r in rows], dtype=np.float64)
        pr.pruned.setdefault(optimizer, {})[pair] = np.cumsum(was_pruned, dtype=np.float64)
        space = spaces[prob]
        if space is None:
            near = dup = np.full(len(rows), np.nan)
        else:
            found = find_reproposals(space, [json.loads(r["params_json"]) for r in rows], was_pruned)
            near, dup = np.cumsum(found.near_pruned, dtype=np.float64), np.cumsum(found.duplicate, dtype=np.float64)
        pr.near_pruned.setdefault(optimizer, {})[pair] = near
        pr.duplicates.setdefault(optimizer, {})[pair] = dup
    return [by_pruner[p] for p in sorted(by_pruner, key=lambda p: (PRUNERS.index(p), p))]


@dataclass
class PruningRow:
    """One optimiser under one pruner after ``budget`` trials, over ``n_pairs`` problem-seed pairs."""

    pruner: str
    group: str
    optimizer: str
    budget: int
    n_pairs: int
    regret: float
    regret_ci: tuple[float, float]
    rank: float
    epochs: float
    epochs_ci: tuple[float, float]
    pruned_fraction: float
    near_pruned: float  # mean per run
    near_pruned_total: float
    duplicates: float  # mean per run


def pruning_rows(pr: PrunerRuns, budgets: Sequence[int], n_boot: int = 2000, seed: int = 0) -> list[PruningRow]:
    """Rows per group, budget and optimiser (the pairs all the pruner's optimisers ran for ``budget`` trials)."""
    summary = {(r.group, r.optimizer, r.budget): r for r in summarise(pr.curves, budgets, n_boot, seed, by_dim=False)}
    rows = []
    for label, group, dim in pr.curves.groups(by_dim=False):
        for b in budgets:
            pairs = pr.curves.common_pairs(b, None, dim, group)
            for o in pr.curves.optimizers:
                s: SummaryRow = summary[(label, o, b)]
                at = {name: np.array([table[o][p][b - 1] for p in pairs]) for name, table in
                      (("epochs", pr.epochs), ("pruned", pr.pruned), ("near", pr.near_pruned),
                       ("dup", pr.duplicates))}
                mean = {k: float(v.mean()) if len(v) else float("nan") for k, v in at.items()}
                rows.append(PruningRow(pr.pruner, label, o, b, len(pairs), s.regret, s.regret_ci, s.rank,
                                       mean["epochs"], _bootstrap_ci(at["epochs"], n_boot, np.random.default_rng(seed)),
                                       mean["pruned"] / b, mean["near"], float(at["near"].sum()), mean["dup"]))
    return rows


@dataclass
class PruningSection:
    """The computed section: rows and paired rows per pruner, and the plots."""

    runs: list[PrunerRuns]
    rows: list[PruningRow]
    paired: dict[str, list[PairedRow]]
    plots: list[Path]

    def to_json(self) -> dict[str, object]:
        return {"rows": [r.__dict__ for r in self.rows],
                "paired": {p: [r.__dict__ for r in rows] for p, rows in self.paired.items()}}


def build_pruning_section(runs: list[PrunerRuns], budgets: Sequence[int], out_dir: Path, n_boot: int = 2000,
                          baseline: str | None = None) -> PruningSection:
    """Rows, paired differences from ``baseline`` (plain name, under each pruner) and plots per pruner."""
    rows: list[PruningRow] = []
    paired: dict[str, list[PairedRow]] = {}
    plots: list[Path] = []
    for pr in runs:
        rows += pruning_rows(pr, budgets, n_boot)
        if baseline is not None and baseline in pr.curves.best and len(pr.curves.best) > 1:
            paired[pr.pruner] = paired_differences(pr.curves, baseline, budgets, n_boot=n_boot, by_dim=False)
        plots += plot(pr.curves, out_dir, prefix=f"pruning_{pr.pruner}_", by_dim=False, regret_label=REGRET_LABEL)
    return PruningSection(runs, rows, paired, plots)


def _fmt(value: float, digits: int) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def pruning_lines(section: PruningSection) -> list[str]:
    """The section as Markdown lines."""
    n_probs = len({p for pr in section.runs for c in pr.curves.best.values() for p, _ in c})
    lines = ["", f"## {TITLE}", "",
             f"{n_probs} problem(s); pruners: {', '.join(pr.pruner for pr in section.runs)}. Runs stored as "
             "`<optimiser>@<pruner>` are reported under their pruner; every number counts the first n trials, "
             "pruned or not.", "",
             "Regret of the best complete value = min(1, max(0, (best_complete - f_opt) / (random_median - f_opt))) "
             "with the problem's f_opt (best final value known) and random median (of final values; see "
             "Reference values below); **1 while no trial has completed**. Rank: per pair by that regret among the "
             "pruner's optimisers, ties averaged. Epochs: epochs the n trials consumed together (mean per run, "
             "bootstrap 95% CI). Pruned: mean fraction of the n trials that were pruned. Near pruned: trials "
             "within 0.01 (max-norm in the unit cube of the search space) of an earlier pruned trial, mean per run "
             "(total over the runs); duplicates: trials exactly at an earlier trial's point, mean per run.", "",
             "| pruner | group | trials | pairs | optimiser | mean regret of best complete [95% CI] | average rank "
             "| epochs [95% CI] | pruned | near pruned (total) | duplicates |",
             "|---|---|---:|---:|---|---|---:|---|---:|---|---:|"]
    for r in section.rows:
        lines.append(f"| {r.pruner} | {r.group} | {r.budget} | {r.n_pairs} | {r.optimizer} | "
                     f"{_fmt_ci(r.regret, r.regret_ci, 4)} | {_fmt(r.rank, 2)} | {_fmt_ci(r.epochs, r.epochs_ci, 1)} | "
                     f"{_fmt(r.pruned_fraction, 3)} | {_fmt(r.near_pruned, 2)} ({_fmt(r.near_pruned_total, 0)}) | "
                     f"{_fmt(r.duplicates, 2)} |")
    for pruner, rows in section.paired.items():
        block = paired_lines(rows, heading="###", what="regret of the best complete value")
        if block:
            block[1] += f" (pruner {pruner})"
        lines += block
    lines += _reference_lines(section)
    if section.plots:
        lines += ["", "Plots: " + ", ".join(f"`{p.name}`" for p in section.plots) + "."]
    return lines


def _reference_lines(section: PruningSection) -> list[str]:
    problems = {name: c for pr in section.runs for name, c in pr.curves.problems.items()}
    lines = ["", "### Reference values (iterative problems)", "",
             "| problem | f_opt (best final value) | how f_opt was obtained | random median (final values) | how |",
             "|---|---:|---|---:|---|"]
    for name in sorted(problems):
        c = problems[name]
        lines.append(f"| {name} | {c['reference_f_opt']:.6g} | {c.get('f_opt_source') or 'unknown'} | "
                     f"{c['reference_median']:.6g} | {c.get('random_median_source')} |")
    return lines


def format_pruning_rows(rows: Sequence[PruningRow], group: str = "all") -> str:
    """Plain-text table of one group's rows, for printing."""
    lines = [f"{'pruner':<10} {'trials':>6}  {'pairs':>5}  {'optimiser':<16} {'regret best complete [95% CI]':<30} "
             f"{'epochs':>8} {'pruned':>7} {'near pruned':>11} {'dups':>5}"]
    for r in rows:
        if r.group == group:
            lines.append(f"{r.pruner:<10} {r.budget:>6}  {r.n_pairs:>5}  {r.optimizer:<16} "
                         f"{_fmt_ci(r.regret, r.regret_ci, 4):<30} {_fmt(r.epochs, 0):>8} "
                         f"{_fmt(r.pruned_fraction, 3):>7} {_fmt(r.near_pruned, 2):>11} {_fmt(r.duplicates, 2):>5}")
    return "\n".join(lines)
