"""Paired differences in normalised regret from a baseline, pooled over several stores (e.g. the meta stage's).

    python benchmarks/paired_pooled.py metabo-transfer-until-1205 metabo-transfer-corners,metabo-transfer \
        bench_results/meta_stage/lcbench.db bench_results/meta_stage/rbv2_xgboost.db bench_results/meta_stage/rbv2_rpart.db

For each variant and budget (5, 10, 25, 50, or ``--budgets 25,50,100`` given first): the mean over all problem-seed
pairs both ran of variant minus baseline, a bootstrap 95% CI (4000 resamples, seed 0), and wins / losses. Negative
is better than the baseline.
"""

from __future__ import annotations

import sys

import numpy as np

from metabo.bench.report import load_curves

BUDGETS = (5, 10, 25, 50)


def main(argv: list[str]) -> int:
    budgets = BUDGETS
    if argv[:1] == ["--budgets"] and len(argv) > 1:
        budgets, argv = tuple(int(b) for b in argv[1].split(",")), argv[2:]
    if len(argv) < 3:
        print(__doc__)
        return 2
    base, variants, stores = argv[0], argv[1].split(","), argv[2:]
    curves = [load_curves(store) for store in stores]
    for variant in variants:
        for budget in budgets:
            diffs = []
            for c in curves:
                if variant in c.best and base in c.best:
                    pairs = sorted(set(c.best[variant]) & set(c.best[base]))
                    diffs.append(c.regret(variant, pairs, budget) - c.regret(base, pairs, budget))
            if not diffs:
                continue
            d = np.concatenate(diffs)
            idx = np.random.default_rng(0).integers(0, len(d), (4000, len(d)))
            lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5])
            print(f"{variant} - {base} @{budget}: {d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}] over {len(d)} pairs, "
                  f"{(d < 0).sum()} wins / {(d > 0).sum()} losses")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
