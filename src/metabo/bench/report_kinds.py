"""Report sections for constrained and multi-objective problems (``problems.kind`` in the store).

Each run's stored trials become a regret curve (``metabo.bench.scores``): for constrained problems the regret
of the best *feasible* value (1 while no trial has been feasible), for multi-objective problems the normalised
hypervolume regret. The curves are held in a ``report.Curves`` whose constants are ``f_opt = 0`` and
``random_median = 1``, so the single-objective machinery (means and ranks over the same problem-seed pairs,
bootstrap CIs, paired differences, plots) applies to them unchanged; groups are "all" and one per problem.
Constrained sections add the mean fraction of feasible trials and the number of runs without a feasible trial.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from metabo.bench.report import (Curves, PairedRow, SummaryRow, _bootstrap_ci, _fmt_ci, paired_differences,
                                 paired_lines, plot, summarise)
from metabo.bench.scores import feasible_fraction_curve, feasible_regret_curve, hypervolume_regret_curve
from metabo.bench.store import ResultStore

Pair = tuple[str, int]
KINDS = ("constrained", "multi")
TITLES = {"constrained": "Constrained problems", "multi": "Multi-objective problems"}
REGRET_LABELS = {"constrained": "mean regret of the best feasible value",
                 "multi": "mean normalised hypervolume regret"}


@dataclass
class KindCurves:
    """Regret curves of one kind's runs, with (constrained) the cumulative fraction of feasible trials."""

    kind: str
    curves: Curves
    feasible: dict[str, dict[Pair, np.ndarray]] = field(default_factory=dict)


def load_kind_curves(store: str | Path, kind: str) -> KindCurves:
    """Regret curves of every run of ``kind``'s problems (the largest budget per optimiser/problem/seed)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    db = ResultStore.existing(store)
    references = {name: row for name, row in db.references().items() if row["kind"] == kind}
    chosen: dict[tuple[str, str, int], dict[str, object]] = {}
    for r in db.rows("SELECT * FROM runs ORDER BY budget"):
        if r["problem"] in references:
            chosen[(r["optimizer"], r["problem"], r["seed"])] = dict(r)
    regret: dict[str, dict[Pair, np.ndarray]] = defaultdict(dict)
    feasible: dict[str, dict[Pair, np.ndarray]] = defaultdict(dict)
    for (opt, prob, seed), run in chosen.items():
        rows = list(db.rows("SELECT value, values_json, feasible FROM trials WHERE optimizer = ? AND problem = ? "
                            "AND seed = ? AND budget = ? ORDER BY trial", (opt, prob, seed, run["budget"])))
        ref = references[prob]
        flags = [r["feasible"] is None or bool(r["feasible"]) for r in rows]
        if kind == "constrained":
            regret[opt][(prob, seed)] = feasible_regret_curve([r["value"] for r in rows], flags, float(ref["f_opt"]),
                                                              float(ref["random_median"]))
            feasible[opt][(prob, seed)] = feasible_fraction_curve(flags)
        else:
            vectors = np.array([json.loads(r["values_json"]) for r in rows], dtype=np.float64)
            regret[opt][(prob, seed)] = hypervolume_regret_curve(vectors, flags, ref["reference"])
    # unit constants: Curves.regret then returns the stored regrets themselves
    constants = {name: {**row, "reference_f_opt": row["f_opt"], "reference_median": row["random_median"],
                        "f_opt": 0.0, "random_median": 1.0, "problem": name} for name, row in references.items()}
    return KindCurves(kind, Curves(dict(regret), constants, list(chosen.values()), group_key="problem"),
                      dict(feasible))


@dataclass
class FeasibilityRow:
    """Mean fraction of feasible trials among the first ``budget`` and the runs with none, over ``n_pairs``."""

    group: str
    optimizer: str
    budget: int
    n_pairs: int
    fraction: float
    fraction_ci: tuple[float, float]
    without_feasible: int


def feasibility_rows(kc: KindCurves, budgets: Sequence[int], n_boot: int = 2000,
                     seed: int = 0) -> list[FeasibilityRow]:
    """Per group, budget and optimiser: the feasible fraction (bootstrap CI) over the pairs all optimisers ran."""
    curves = kc.curves
    rows = []
    for label, group, dim in curves.groups(by_dim=False):
        for b in budgets:
            pairs = curves.common_pairs(b, None, dim, group)
            for o in curves.optimizers:
                frac = np.array([kc.feasible[o][p][b - 1] for p in pairs])
                rows.append(FeasibilityRow(label, o, b, len(pairs), float(frac.mean()) if len(pairs) else float("nan"),
                                           _bootstrap_ci(frac, n_boot, np.random.default_rng(seed)),
                                           int((frac == 0).sum())))
    return rows


@dataclass
class KindSection:
    """One kind's computed section: summary rows, feasibility rows (constrained), paired rows and plots."""

    kind: str
    curves: KindCurves
    rows: list[SummaryRow]
    feasibility: list[FeasibilityRow]
    paired: list[PairedRow]
    plots: list[Path]

    def to_json(self) -> dict[str, object]:
        return {"rows": [r.__dict__ for r in self.rows], "feasibility": [r.__dict__ for r in self.feasibility],
                "paired": [r.__dict__ for r in self.paired]}


def load_sections(store: str | Path, optimizers: Sequence[str] | None = None) -> list[KindCurves]:
    """The kinds with runs in ``store`` (restricted to ``optimizers`` where given)."""
    out = []
    for kind in KINDS:
        kc = load_kind_curves(store, kind)
        if optimizers is not None:
            kc.curves.best = {o: c for o, c in kc.curves.best.items() if o in optimizers}
            kc.feasible = {o: c for o, c in kc.feasible.items() if o in optimizers}
        if kc.curves.best:
            out.append(kc)
    return out


def build_section(kc: KindCurves, budgets: Sequence[int], out_dir: Path, n_boot: int = 2000,
                  baseline: str | None = None) -> KindSection:
    """Summary, feasibility and paired rows of one kind at ``budgets``, and its plots in ``out_dir``."""
    rows = summarise(kc.curves, budgets, n_boot=n_boot, by_dim=False)
    feas = feasibility_rows(kc, budgets, n_boot=n_boot) if kc.kind == "constrained" else []
    paired = (paired_differences(kc.curves, baseline, budgets, n_boot=n_boot, by_dim=False)
              if baseline is not None and baseline in kc.curves.best else [])
    plots = plot(kc.curves, out_dir, prefix=f"{kc.kind}_", by_dim=False, regret_label=REGRET_LABELS[kc.kind])
    return KindSection(kc.kind, kc, rows, feas, paired, plots)


def section_lines(section: KindSection) -> list[str]:
    """The section as Markdown lines."""
    kind = section.kind
    curves = section.curves.curves
    n_probs = len({p for c in curves.best.values() for p, _ in c})
    lines = ["", f"## {TITLES[kind]}", "", f"{n_probs} problem(s), {len(curves.optimizers)} optimisers.", ""]
    if kind == "constrained":
        lines += ["Regret of the best feasible value = min(1, max(0, (best_feasible - f_opt) / (feasible_median - "
                  "f_opt))), where f_opt is the best feasible value known (see Reference values below) and "
                  "feasible_median the median objective of the feasible ones among uniform random points. **A run "
                  "with no feasible trial yet counts as regret 1**, like one whose best feasible value is no better "
                  "than feasible_median. Feasible trials: mean fraction of feasible trials among the first n "
                  "(bootstrap 95% CI); no feasible trial: runs (problem-seed pairs) without any feasible trial in "
                  "their first n. Rank: per pair by regret, ties (e.g. two runs at 1) averaged.", "",
                  "| group | evaluations | pairs | optimiser | mean regret of best feasible [95% CI] | average rank "
                  "[95% CI] | feasible trials [95% CI] | no feasible trial |",
                  "|---|---:|---:|---|---|---|---|---:|"]
        feas = {(f.group, f.optimizer, f.budget): f for f in section.feasibility}
        for r in section.rows:
            f = feas[(r.group, r.optimizer, r.budget)]
            lines.append(f"| {r.group} | {r.budget} | {r.n_pairs} | {r.optimizer} | "
                         f"{_fmt_ci(r.regret, r.regret_ci, 4)} | {_fmt_ci(r.rank, r.rank_ci, 2)} | "
                         f"{_fmt_ci(f.fraction, f.fraction_ci, 3)} | {f.without_feasible} |")
    else:
        lines += ["Normalised hypervolume regret = max(0, (HV(reference front) - HV(trials so far)) / HV(reference "
                  "front)): objectives normalised by the reference front's ideal and nadir points ((f - ideal) / "
                  "(nadir - ideal)), hypervolume up to the reference point (1.1 per normalised objective), computed "
                  "exactly. 0 = as good as the reference front, 1 = no point dominates the reference point yet. "
                  "Rank: per pair by regret, ties averaged.", "",
                  "| group | evaluations | pairs | optimiser | mean normalised hypervolume regret [95% CI] | "
                  "average rank [95% CI] |",
                  "|---|---:|---:|---|---|---|"]
        for r in section.rows:
            lines.append(f"| {r.group} | {r.budget} | {r.n_pairs} | {r.optimizer} | "
                         f"{_fmt_ci(r.regret, r.regret_ci, 4)} | {_fmt_ci(r.rank, r.rank_ci, 2)} |")
    what = "regret of the best feasible value" if kind == "constrained" else "normalised hypervolume regret"
    lines += paired_lines(section.paired, heading="###", what=what)
    lines += _reference_lines(kind, curves)
    if section.plots:
        lines += ["", "Plots: " + ", ".join(f"`{p.name}`" for p in section.plots) + "."]
    return lines


def _reference_lines(kind: str, curves: Curves) -> list[str]:
    lines = ["", f"### Reference values ({TITLES[kind].lower()})", ""]
    if kind == "constrained":
        lines += ["| problem | f_opt (best feasible) | how f_opt was obtained | feasible random median | how |",
                  "|---|---:|---|---:|---|"]
        # the curve constants were replaced by 0 / 1; the store's values are read back for this table
        for name in sorted(curves.problems):
            c = curves.problems[name]
            lines.append(f"| {name} | {c['reference_f_opt']:.6g} | {c.get('f_opt_source') or 'unknown'} | "
                         f"{c['reference_median']:.6g} | {c.get('random_median_source')} |")
        return lines
    lines += ["| problem | objectives | ideal | nadir | reference point | HV(reference front) | reference front |",
              "|---|---|---|---|---|---:|---|"]
    for name in sorted(curves.problems):
        ref = curves.problems[name]["reference"]
        fmt = ", ".join
        lines.append(f"| {name} | {fmt(ref['objectives'])} | ({fmt(f'{v:.4g}' for v in ref['ideal'])}) | "
                     f"({fmt(f'{v:.4g}' for v in ref['nadir'])}) | ({fmt(f'{v:g}' for v in ref['reference_point'])}) "
                     f"| {ref['reference_hypervolume']:.6f} | {ref['source']} |")
    return lines
