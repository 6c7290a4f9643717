"""Summarise the meta-learning stage (``benchmarks/meta_stage.sh``) per scenario, against issue 16's bars.

For each scenario store: every optimiser's mean normalised regret at 5 / 10 / 25 / 50 evaluations over the
problem-seed pairs it shares with ``metabo-transfer`` (so the peers that ran fewer seeds or instances are
compared on their own pairs), each one's paired difference from GP with a bootstrap 95% CI, and the bars:
metabo-transfer below every peer at 5, 10 and 25, no worse than the best peer at 50, and the moonshot (its
regret at 10 against the best non-transfer peer's at 50).

    python benchmarks/meta_stage_summary.py                       # reads bench_results/meta_stage/*.db
    python benchmarks/meta_stage_summary.py --out bench_results/meta_stage/summary.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from metabo.bench.optimizers import REGISTRY
from metabo.bench.report import load_curves

BUDGETS = (5, 10, 25, 50)
TRANSFER = "metabo-transfer"
TRANSFER_PEERS = ("warmstart-tpe", "synetune-zeroshot", "synetune-quantile", "synetune-boundingbox")
NON_TRANSFER_PEERS = ("random", "tpe", "gp", "smac-hpo", "smac-bb", "hebo", "cmaes", "botorch")


def _ci(d: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> tuple[float, float]:
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5])
    return float(lo), float(hi)


def scenario_section(store: Path) -> list[str]:
    curves = load_curves(store)
    opts = [o for o in curves.optimizers]
    lines = [f"### {store.stem}", ""]
    if TRANSFER not in opts:
        return lines + [f"(no {TRANSFER} runs yet)", ""]
    pairs_t = set(curves.best[TRANSFER])
    header = "| optimiser | pairs | " + " | ".join(f"@{b}" for b in BUDGETS) + " | " + \
        " | ".join(f"minus GP @{b} [95% CI]" for b in BUDGETS) + " |"
    lines += [header, "|---|---:|" + "---:|" * (2 * len(BUDGETS))]
    means: dict[str, dict[int, float]] = {}
    order = [TRANSFER] + sorted(o for o in opts if o != TRANSFER)
    for o in order:
        pairs = sorted(pairs_t & set(curves.best[o]))
        if not pairs:
            continue
        means[o] = {b: float(curves.regret(o, pairs, b).mean()) for b in BUDGETS}
        cells = [f"{means[o][b]:.4f}" for b in BUDGETS]
        diffs = []
        if "gp" in curves.best and o != "gp":
            shared = sorted(set(curves.best[o]) & set(curves.best["gp"]))
            for b in BUDGETS:
                d = curves.regret(o, shared, b) - curves.regret("gp", shared, b)
                lo, hi = _ci(d, np.random.default_rng(0)) if len(d) else (float("nan"), float("nan"))
                diffs.append(f"{d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]" if len(d) else "")
        else:
            diffs = [""] * len(BUDGETS)
        label = o if o.split(":")[0] in REGISTRY else f"{o} (no longer a bench name)"
        lines.append(f"| {label} | {len(pairs)} | " + " | ".join(cells) + " | " + " | ".join(diffs) + " |")
    lines.append("")
    peers = [o for o in means if o in TRANSFER_PEERS + NON_TRANSFER_PEERS]

    def paired(o: str, b: int) -> tuple[float, float]:
        """metabo-transfer's and ``o``'s mean regret at ``b`` on the pairs both ran."""
        shared = sorted(pairs_t & set(curves.best[o]))
        return float(curves.regret(TRANSFER, shared, b).mean()), float(curves.regret(o, shared, b).mean())

    if peers:
        for b in BUDGETS:
            gaps = {o: paired(o, b) for o in peers}
            worst = min(peers, key=lambda o: gaps[o][1] - gaps[o][0])  # the peer ahead by most (or behind by least)
            t, p = gaps[worst]
            ok = t < p if b < 50 else t <= p
            lines.append(f"- at {b}: {'met' if ok else 'not met'}; closest peer {worst}: {p:.4f} against "
                         f"{TRANSFER}'s {t:.4f} on the pairs both ran")
        plain = [o for o in peers if o in NON_TRANSFER_PEERS]
        if plain:
            best_plain = min(plain, key=lambda o: paired(o, 50)[1])
            t10 = paired(best_plain, 10)[0]
            p50 = paired(best_plain, 50)[1]
            lines.append(f"- moonshot: {TRANSFER} at 10 {t10:.4f} against the best non-transfer peer at 50 "
                         f"({best_plain} {p50:.4f}, same pairs): {'reached' if t10 <= p50 else 'not reached'}")
        lines.append(f"- peers here: {', '.join(sorted(peers))}")
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("bench_results/meta_stage"), help="the stage's folder")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    stores = sorted(args.dir.glob("*.db"))
    if not stores:
        print(f"no stores in {args.dir}", file=sys.stderr)
        return 1
    lines = ["Mean normalised regret per scenario (YAHPO validation instances) on the problem-seed pairs each "
             f"optimiser shares with {TRANSFER}, and paired differences from GP on the pairs both ran. Command: "
             "`bash benchmarks/meta_stage.sh` (with `METABO=` naming the metabo variants), then "
             "`python benchmarks/meta_stage_summary.py`. The bars are checked against the peers that have run.", ""]
    for store in stores:
        lines += scenario_section(store)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
