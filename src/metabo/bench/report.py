"""Summaries of a results store: normalised regret, average rank, errors; Markdown and PNG output.

* Normalised regret of a run after n evaluations: ``max(0, (best_so_far_n - f_opt) / (random_median - f_opt))``
  (see ``metabo.bench.problems.base``). ``f_opt`` is the known optimum (BBOB) or the current reference: the best
  value ever seen for the problem in the store (random sample, every run, reference searches; see
  ``metabo.bench.reference``), so regrets of such problems are relative to the best known point and can change
  as the store grows. The report lists how every reference was obtained. Reported as the mean over
  problem-seed pairs with a percentile bootstrap 95% CI (pairs resampled with replacement).
* Average rank: per problem-seed pair the optimisers are ranked by best_so_far after n evaluations (1 = best,
  ties share the average rank), then ranks are averaged over pairs; same bootstrap for its CI.
* Only problem-seed pairs that every reported optimiser has run for at least n evaluations enter the numbers
  at n, so every optimiser is averaged over the same pairs; the count is reported.
* For each (optimiser, problem, seed), the stored run with the largest budget is used.
* Constrained and multi-objective problems get sections of their own (``metabo.bench.report_kinds``): the
  regret of the best feasible value with the fraction of feasible trials, and the normalised hypervolume regret.
* Iterative problems (``pruning/...``) get a section per pruner (``metabo.bench.report_pruning``): the regret of
  the best complete value, epochs consumed, the fraction pruned and re-proposed pruned points.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.stats import rankdata

from metabo.bench.problems import normalised_regret
from metabo.bench.pruners import run_name, split_run_name
from metabo.bench.store import ResultStore

Pair = tuple[str, int]  # (problem, seed)
Group = tuple[str, str | None, int | None]  # (label, family, dim)

REGRET_FLOOR = 1e-6  # plotted floor of the log-scaled regret axis


@dataclass
class Curves:
    """best_so_far curves per optimiser and (problem, seed), with problem constants and run metadata."""

    best: dict[str, dict[Pair, np.ndarray]]
    problems: dict[str, dict[str, float]]
    runs: list[dict[str, object]] = field(default_factory=list)
    group_key: str = "family"  # the problem constant whose values make the report's non-dimension groups

    @property
    def optimizers(self) -> list[str]:
        return sorted(self.best)

    def common_pairs(self, n: int, optimizers: Sequence[str] | None = None, dim: int | None = None,
                     family: str | None = None) -> list[Pair]:
        """Pairs every optimiser has run for at least ``n`` evaluations (optionally of one dimension / family)."""
        opts = list(optimizers or self.optimizers)
        sets = [{p for p, c in self.best[o].items() if len(c) >= n} for o in opts]
        pairs = set.intersection(*sets) if sets else set()
        if dim is not None:
            pairs = {p for p in pairs if int(self.problems[p[0]]["dim"]) == dim}
        if family is not None:
            pairs = {p for p in pairs if self.problems[p[0]][self.group_key] == family}
        return sorted(pairs)

    def groups(self, by_dim: bool = True) -> list[Group]:
        """Report groups: "all", then one per family (``group_key``'s value; if several), then per dimension (if
        several)."""
        out: list[Group] = [("all", None, None)]
        families = sorted({str(c[self.group_key]) for c in self.problems.values()})
        if len(families) > 1:
            out += [(f, f, None) for f in families]
        dims = sorted({int(c["dim"]) for c in self.problems.values()})
        if by_dim and len(dims) > 1:
            out += [(f"d{d}", None, d) for d in dims]
        return out

    def regret(self, optimizer: str, pairs: Sequence[Pair], n: int) -> np.ndarray:
        """Normalised regret after ``n`` evaluations, one value per pair."""
        out = np.empty(len(pairs))
        for i, (prob, seed) in enumerate(pairs):
            c = self.problems[prob]
            out[i] = normalised_regret(self.best[optimizer][(prob, seed)][n - 1], c["f_opt"], c["random_median"])
        return out

    def ranks(self, optimizers: Sequence[str], pairs: Sequence[Pair], n: int) -> np.ndarray:
        """Ranks (optimisers x pairs) by best_so_far after ``n`` evaluations; 1 is best, ties averaged."""
        values = np.array([[self.best[o][p][n - 1] for p in pairs] for o in optimizers])
        return rankdata(values, axis=0, method="average") if len(pairs) else values


def load_curves(store: str | Path) -> Curves:
    """Read every run of a store's single-objective, unconstrained problems (the largest budget per
    optimiser/problem/seed); constrained and multi-objective problems are ``report_kinds``'s."""
    db = ResultStore.existing(store)
    problems = {name: row for name, row in db.references().items() if row["kind"] == "single"}
    chosen: dict[tuple[str, str, int], dict[str, object]] = {}
    for r in db.rows("SELECT * FROM runs ORDER BY budget"):
        if r["problem"] not in problems:
            continue
        chosen[(r["optimizer"], r["problem"], r["seed"])] = dict(r)
    best: dict[str, dict[Pair, np.ndarray]] = defaultdict(dict)
    for (opt, prob, seed), run in chosen.items():
        rows = db.rows("SELECT best_so_far FROM trials WHERE optimizer = ? AND problem = ? AND seed = ? "
                       "AND budget = ? ORDER BY trial", (opt, prob, seed, run["budget"]))
        best[opt][(prob, seed)] = np.array([row["best_so_far"] for row in rows], dtype=np.float64)
    return Curves(dict(best), problems, list(chosen.values()))


def _bootstrap_ci(samples: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of the mean of ``samples`` (last axis = pairs)."""
    n = samples.shape[-1]
    if n == 0:
        return float("nan"), float("nan")
    idx = rng.integers(0, n, size=(n_boot, n))
    means = samples[..., idx].mean(-1)
    lo, hi = np.percentile(means, [2.5, 97.5], axis=-1)
    return float(lo), float(hi)


@dataclass
class SummaryRow:
    """Mean normalised regret and average rank of one optimiser at one budget over ``n_pairs`` pairs."""

    group: str
    optimizer: str
    budget: int
    n_pairs: int
    regret: float
    regret_ci: tuple[float, float]
    rank: float
    rank_ci: tuple[float, float]


def summarise(curves: Curves, budgets: Sequence[int], n_boot: int = 2000, seed: int = 0,
              by_dim: bool = True) -> list[SummaryRow]:
    """Regret and rank rows per group ("all", then "d<k>" per dimension) and budget."""
    opts = curves.optimizers
    rows: list[SummaryRow] = []
    for label, family, dim in curves.groups(by_dim):
        for b in budgets:
            pairs = curves.common_pairs(b, opts, dim, family)
            ranks = curves.ranks(opts, pairs, b)
            for i, o in enumerate(opts):
                rng = np.random.default_rng(seed)  # the same resamples for every optimiser
                reg = curves.regret(o, pairs, b)
                rows.append(SummaryRow(label, o, b, len(pairs),
                                       float(reg.mean()) if len(pairs) else float("nan"),
                                       _bootstrap_ci(reg, n_boot, rng),
                                       float(ranks[i].mean()) if len(pairs) else float("nan"),
                                       _bootstrap_ci(ranks[i], n_boot, np.random.default_rng(seed))))
    return rows


@dataclass
class PairedRow:
    """Mean paired difference in normalised regret, ``optimizer`` minus ``baseline``, over the pairs both ran."""

    group: str
    optimizer: str
    baseline: str
    budget: int
    n_pairs: int
    difference: float
    difference_ci: tuple[float, float]
    wins: int  # pairs where ``optimizer`` has the lower regret
    losses: int  # pairs where ``baseline`` has the lower regret


def paired_differences(curves: Curves, baseline: str, budgets: Sequence[int], n_boot: int = 2000, seed: int = 0,
                       by_dim: bool = True) -> list[PairedRow]:
    """Each optimiser against ``baseline`` on the same problem-seed pairs: the per-pair differences share the
    problem's and the seed's difficulty, so their bootstrap CI is much tighter than comparing two unpaired means.
    A CI entirely below 0 means the optimiser's regret is lower than the baseline's."""
    if baseline not in curves.best:
        raise ValueError(f"baseline {baseline!r} has no runs; the store has {curves.optimizers}")
    rows: list[PairedRow] = []
    for label, family, dim in curves.groups(by_dim):
        for b in budgets:
            for o in curves.optimizers:
                if o == baseline:
                    continue
                pairs = curves.common_pairs(b, [baseline, o], dim, family)
                d = curves.regret(o, pairs, b) - curves.regret(baseline, pairs, b)
                rows.append(PairedRow(label, o, baseline, b, len(pairs),
                                      float(d.mean()) if len(pairs) else float("nan"),
                                      _bootstrap_ci(d, n_boot, np.random.default_rng(seed)),
                                      int((d < 0).sum()), int((d > 0).sum())))
    return rows


def paired_lines(rows: Sequence[PairedRow], heading: str = "##", what: str = "normalised regret") -> list[str]:
    """Markdown section of ``paired_differences`` rows (none: no lines), under a ``heading``-level title."""
    if not rows:
        return []
    lines = ["", f"{heading} Paired differences from {rows[0].baseline}", "",
             f"Per problem-seed pair, the optimiser's {what} minus `{rows[0].baseline}`'s, averaged over "
             "the pairs both ran, with a bootstrap 95% CI; negative is better than the baseline. Wins / losses: pairs "
             "with a lower / higher regret than the baseline (the rest tie).", "",
             "| group | evaluations | pairs | optimiser | mean difference [95% CI] | wins / losses |",
             "|---|---:|---:|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.group} | {r.budget} | {r.n_pairs} | {r.optimizer} | "
                     f"{_fmt_ci(r.difference, r.difference_ci, 4)} | {r.wins} / {r.losses} |")
    return lines


def health(store: str | Path) -> list[dict[str, object]]:
    """Per optimiser: runs, trials, errors, fallbacks, warnings, startup size, suggestion times, models used."""
    db = ResultStore.existing(store)
    out = []
    for r in db.rows("""SELECT optimizer, COUNT(*) AS runs, SUM(n_errors) AS errors, SUM(n_fallbacks) AS fallbacks,
                        SUM(n_warnings) AS warnings, MIN(startup_trials) AS startup_min,
                        MAX(startup_trials) AS startup_max FROM runs GROUP BY optimizer ORDER BY optimizer"""):
        row = dict(r)
        secs = np.array([t["suggest_seconds"] for t in db.rows(
            "SELECT suggest_seconds FROM trials WHERE optimizer = ?", (r["optimizer"],))])
        row["trials"] = int(len(secs))
        row["suggest_median_s"] = float(np.median(secs)) if len(secs) else float("nan")
        row["suggest_max_s"] = float(secs.max()) if len(secs) else float("nan")
        messages: dict[str, int] = defaultdict(int)
        models: set[str] = set()
        first_errors: dict[str, int] = defaultdict(int)
        for run in db.rows("SELECT warnings_json, info_json, first_error FROM runs WHERE optimizer = ?",
                           (r["optimizer"],)):
            for msg, count in json.loads(run["warnings_json"] or "{}").items():
                messages[msg] += count
            model = json.loads(run["info_json"] or "{}").get("model")
            if model:
                models.add(str(model.get("sha256_16")))
            if run["first_error"]:
                first_errors[run["first_error"].splitlines()[0][:200]] += 1
        same_pruner_random = run_name("random", split_run_name(r["optimizer"])[1])
        row["shared_prefix_median"] = _shared_prefix_median(db, r["optimizer"], same_pruner_random)
        row["warning_messages"] = dict(sorted(messages.items(), key=lambda kv: -kv[1]))
        row["error_messages"] = dict(sorted(first_errors.items(), key=lambda kv: -kv[1]))
        row["models"] = sorted(models)
        out.append(row)
    return out


def _shared_prefix_median(db: ResultStore, optimizer: str, reference: str = "random") -> float | None:
    """Median over problem-seed pairs of how many leading points equal those of ``reference``'s run."""
    def points(opt: str) -> dict[tuple[str, int], list[str]]:
        out: dict[tuple[str, int], list[str]] = defaultdict(list)
        for t in db.rows("SELECT problem, seed, params_json FROM trials WHERE optimizer = ? ORDER BY budget, trial",
                         (opt,)):
            out[(t["problem"], t["seed"])].append(t["params_json"])
        return out

    ref, mine = points(reference), points(optimizer)
    counts = []
    for pair in set(ref) & set(mine):
        n = 0
        for a, b in zip(ref[pair], mine[pair]):
            if a != b:
                break
            n += 1
        counts.append(n)
    return float(np.median(counts)) if counts else None


def _fmt_ci(value: float, ci: tuple[float, float], digits: int) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def markdown(rows: Sequence[SummaryRow], health_rows: Sequence[dict[str, object]], store: str | Path,
             curves: Curves, paired: Sequence[PairedRow] = (), other_curves: Sequence[Curves] = (),
             kind_lines: Sequence[str] = ()) -> str:
    """The report as Markdown text; ``kind_lines`` (the constrained and multi-objective sections, whose curves are
    ``other_curves``) follow the single-objective table."""
    every = [curves, *other_curves]
    n_probs = len({p for cs in every for c in cs.best.values() for p, _ in c})
    n_seeds = len({s for cs in every for c in cs.best.values() for _, s in c})
    n_opts = len({o for cs in every for o in cs.best})
    lines = ["# Benchmark report", "",
             f"Store: `{store}`; {n_opts} optimisers, {n_probs} problems, {n_seeds} seeds.", ""]
    if rows:
        lines += [SINGLE_OBJECTIVE_INTRO, ""]
    for h in health_rows:
        if h["errors"] or h["fallbacks"]:
            lines += [f"**Warning:** `{h['optimizer']}` raised {h['errors']} error(s) and {h['fallbacks']} of its "
                      f"{h['trials']} points came from the random fallback; its numbers below include those points "
                      "(see Optimiser health).", ""]
    if rows:
        lines += _single_objective_lines(rows, paired)
    lines += list(kind_lines)
    lines += _health_lines(health_rows)
    if rows:
        lines += reference_lines(curves)
    for h in health_rows:
        if len(h["models"]) > 1:
            lines += ["", f"**Warning:** `{h['optimizer']}` runs used {len(h['models'])} different model files."]
        for title, key in (("errors (first error per run)", "error_messages"), ("warnings", "warning_messages")):
            if h[key]:
                lines += ["", f"{h['optimizer']} {title}:", ""]
                lines += [f"- {count} x `{msg}`" for msg, count in list(h[key].items())[:10]]
    return "\n".join(lines) + "\n"


SINGLE_OBJECTIVE_INTRO = (
    "Normalised regret = max(0, (best_so_far - f_opt) / (random_median - f_opt)), where random_median is the "
    "median objective over uniform random points and f_opt the known optimum or, where none is known, the best "
    "value ever seen for the problem (0 = optimum found, 1 = a typical random point; see Reference values). "
    "Mean over problem-seed pairs with a bootstrap 95% CI. Rank: per pair, 1 = best best_so_far, ties "
    "averaged; mean over pairs with a bootstrap 95% CI. Every optimiser is averaged over the same pairs.")


def _single_objective_lines(rows: Sequence[SummaryRow], paired: Sequence[PairedRow]) -> list[str]:
    lines = [
        "| group | evaluations | pairs | optimiser | mean normalised regret [95% CI] | average rank [95% CI] |",
        "|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.group} | {r.budget} | {r.n_pairs} | {r.optimizer} | {_fmt_ci(r.regret, r.regret_ci, 4)} "
                     f"| {_fmt_ci(r.rank, r.rank_ci, 2)} |")
    return lines + paired_lines(paired)


def _health_lines(health_rows: Sequence[dict[str, object]]) -> list[str]:
    lines = ["", "## Optimiser health", "",
             "Suggestion times are wall times of `study.ask()` inside the benchmark (all workers sharing the "
             "machine), indicative only; see `benchmarks/speed.py` for controlled timings.", "",
             "Startup trials: the sampler's own initial design size. Shared with random: median number of leading "
             "points identical to the `random` run of the same problem, seed and pruner (Optuna's samplers and "
             "metabo all draw startup points from `RandomSampler(seed)`, so the initial designs coincide).", "",
             "| optimiser | runs | trials | startup trials | shared with random | errors | random fallbacks "
             "| warnings | median / max suggest s | model sha256 (first 16) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for h in health_rows:
        smin, smax = h["startup_min"], h["startup_max"]
        startup = "n/a" if smin is None else (str(smin) if smin == smax else f"{smin}-{smax}")
        models = ", ".join(h["models"]) or "-"
        shared = "n/a" if h["shared_prefix_median"] is None else f"{h['shared_prefix_median']:g}"
        lines.append(f"| {h['optimizer']} | {h['runs']} | {h['trials']} | {startup} | {shared} | {h['errors']} | "
                     f"{h['fallbacks']} | {h['warnings']} | {h['suggest_median_s']:.4f} / {h['suggest_max_s']:.3f} "
                     f"| {models} |")
    return lines


def reference_lines(curves: Curves) -> list[str]:
    """Markdown section saying how each problem's f_opt and random median were obtained (grouped where equal)."""
    lines = ["", "## Reference values", "",
             "Where no optimum is known, f_opt is the best value ever seen for the problem in this store, so those "
             "regrets are relative to the best known point; run `metabo bench --reference` for a long reference "
             "search per problem.", ""]
    exact: dict[tuple[str, str], int] = defaultdict(int)
    others = []
    for name in sorted(curves.problems):
        c = curves.problems[name]
        if c.get("exact"):
            exact[(str(c["family"]), str(c.get("random_median_source")))] += 1
        else:
            others.append((name, c))
    for (family, median_source), count in sorted(exact.items()):
        lines.append(f"- {family}: {count} problem(s); f_opt: known optimum; random median: {median_source}.")
    if others:
        lines += ["", "| problem | f_opt (reference) | how f_opt was obtained | random median | how |",
                  "|---|---:|---|---:|---|"]
        lines += [f"| {name} | {c['f_opt']:.6g} | {c.get('f_opt_source') or 'unknown'} | {c['random_median']:.6g} "
                  f"| {c.get('random_median_source')} |" for name, c in others]
    return lines


def plot(curves: Curves, out_dir: Path, n_boot: int = 500, prefix: str = "", by_dim: bool = True,
         regret_label: str = "mean normalised regret") -> list[Path]:
    """PNG plots of mean normalised regret and average rank vs evaluations (one panel per group), written as
    ``<prefix>regret_vs_evaluations.png`` and ``<prefix>rank_vs_evaluations.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    opts = curves.optimizers
    groups = curves.groups(by_dim)
    max_n = max((len(c) for o in opts for c in curves.best[o].values()), default=0)
    paths = []
    for kind in ("regret", "rank"):
        fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
        for ax, (label, family, dim) in zip(axes[0], groups):
            ns = [n for n in range(1, max_n + 1) if curves.common_pairs(n, opts, dim, family)]
            if not ns:  # these optimisers share no run in this group
                ax.set_title(f"{label} (no problem-seed pair shared by all)")
                ax.axis("off")
                continue
            for i, o in enumerate(opts):
                mean, lo, hi = [], [], []
                for n in ns:
                    pairs = curves.common_pairs(n, opts, dim, family)
                    vals = curves.regret(o, pairs, n) if kind == "regret" else curves.ranks(opts, pairs, n)[i]
                    ci = _bootstrap_ci(vals, n_boot, np.random.default_rng(0))
                    mean.append(vals.mean())
                    lo.append(ci[0])
                    hi.append(ci[1])
                if kind == "regret":  # a run can reach the reference optimum (regret 0): keep it on the log axis
                    mean, lo, hi = (np.maximum(v, REGRET_FLOOR).tolist() for v in (mean, lo, hi))
                ax.plot(ns, mean, label=o)
                ax.fill_between(ns, lo, hi, alpha=0.2)
            ax.set_title(f"{label} ({len(curves.common_pairs(1, opts, dim, family))} problem-seed pairs)")
            ax.set_xlabel("evaluations")
            if kind == "regret":
                ax.set_yscale("log")
                ax.set_ylabel(f"{regret_label} (95% CI)")
            else:
                ax.set_ylabel("average rank (1 = best, 95% CI)")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        path = out_dir / f"{prefix}{kind}_vs_evaluations.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


@dataclass
class Report:
    """What ``build_report`` wrote and computed (``sections``: the constrained and multi-objective ones)."""

    markdown_path: Path
    plots: list[Path]
    rows: list[SummaryRow]
    health: list[dict[str, object]]
    paired: list[PairedRow] = field(default_factory=list)
    sections: list[Any] = field(default_factory=list)
    pruning: Any = None  # report_pruning.PruningSection, where the store has iterative problems


def _default_budgets(all_curves: Sequence[Curves]) -> list[int]:
    """Half and all of the largest evaluation count at which the optimisers of some curves share a pair."""
    top = 0
    for curves in all_curves:
        lengths = {len(c) for o in curves.optimizers for c in curves.best[o].values()}
        top = max([top, *(n for n in lengths if curves.common_pairs(n))])
    return sorted({max(1, top // 2), top}) if top else []


def build_report(store: str | Path, budgets: Sequence[int] | None, out_dir: str | Path,
                 n_boot: int = 2000, optimizers: Sequence[str] | None = None,
                 baseline: str | None = None) -> Report:
    """Compute the summary of ``store`` at ``budgets`` (default: half and all of the largest common budget)
    and write ``report.md``, ``summary.json`` and the PNG plots into ``out_dir``; ``optimizers`` restricts the
    report (ranks included) to those optimisers; ``baseline`` adds every other optimiser's paired difference
    from it (``paired_differences``). Constrained and multi-objective problems get their own sections
    (``metabo.bench.report_kinds``), and iterative problems one per pruner (``metabo.bench.report_pruning``,
    where ``optimizers`` and ``baseline`` are plain names: ``tpe`` is ``tpe@median`` under the median pruner)."""
    from metabo.bench.report_kinds import build_section, load_sections, section_lines
    from metabo.bench.report_pruning import build_pruning_section, load_pruning, pruning_lines

    curves = load_curves(store)
    kinds = load_sections(store, optimizers)
    pruning = load_pruning(store)
    if optimizers is not None:
        for pr in pruning:
            pr.restrict(optimizers)
        pruning = [pr for pr in pruning if pr.curves.best]
        have = set(curves.best) | {o for kc in kinds for o in kc.curves.best} | \
            {o for pr in pruning for o in pr.curves.best}
        unknown = set(optimizers) - have
        if unknown:
            raise ValueError(f"{store}: no runs of {sorted(unknown)}; it has {sorted(have)}")
        curves.best = {o: c for o, c in curves.best.items() if o in optimizers}
    every = ([curves] if curves.best else []) + [kc.curves for kc in kinds] + [pr.curves for pr in pruning]
    if not every:
        raise ValueError(f"{store}: no complete runs to report")
    if baseline is not None and not any(baseline in c.best for c in every):
        raise ValueError(f"baseline {baseline!r} has no runs; the store has "
                         f"{sorted({o for c in every for o in c.best})}")
    if not budgets:
        budgets = _default_budgets(every)
        if not budgets:
            raise ValueError(f"{store}: the optimisers share no problem-seed pair")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summarise(curves, budgets, n_boot=n_boot) if curves.best else []
    paired = (paired_differences(curves, baseline, budgets, n_boot=n_boot)
              if baseline and baseline in curves.best else [])
    sections = [build_section(kc, budgets, out, n_boot=n_boot, baseline=baseline) for kc in kinds]
    pruning_section = build_pruning_section(pruning, budgets, out, n_boot=n_boot, baseline=baseline) \
        if pruning else None
    health_rows = [h for h in health(store) if optimizers is None or h["optimizer"] in optimizers
                   or split_run_name(h["optimizer"])[0] in optimizers]
    md_path = out / "report.md"
    kind_lines = [line for section in sections for line in section_lines(section)]
    if pruning_section is not None:
        kind_lines += pruning_lines(pruning_section)
    md_path.write_text(markdown(rows, health_rows, store, curves, paired,
                                [kc.curves for kc in kinds] + [pr.curves for pr in pruning], kind_lines))
    (out / "summary.json").write_text(json.dumps(
        {"rows": [r.__dict__ for r in rows], "paired": [r.__dict__ for r in paired], "health": health_rows,
         **{section.kind: section.to_json() for section in sections},
         **({"pruning": pruning_section.to_json()} if pruning_section is not None else {})},
        indent=2, default=str) + "\n")
    plots = plot(curves, out) if curves.best else []
    plots += [p for section in sections for p in section.plots]
    plots += pruning_section.plots if pruning_section is not None else []
    return Report(md_path, plots, rows, health_rows, paired, sections, pruning_section)


def format_rows(rows: Sequence[SummaryRow], group: str = "all") -> str:
    """Plain-text table of one group's rows, for printing."""
    lines = [f"{'evals':>5}  {'pairs':>5}  {'optimiser':<16} {'mean norm. regret [95% CI]':<30} avg rank [95% CI]"]
    for r in rows:
        if r.group == group:
            lines.append(f"{r.budget:>5}  {r.n_pairs:>5}  {r.optimizer:<16} {_fmt_ci(r.regret, r.regret_ci, 4):<30} "
                         f"{_fmt_ci(r.rank, r.rank_ci, 2)}")
    return "\n".join(lines)
