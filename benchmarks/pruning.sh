#!/usr/bin/env bash
# Pruning (issue 18 item 5): metabo against Optuna's samplers in studies with Optuna pruners.
#   pruning/lcbench/*: YAHPO lcbench's surrogate on its 7 validation instances as learning curves: a trial reports
#                      its validation error (1 - val_accuracy / 100) at epochs 1, 2, 3, 4, 6, 9, 13, 18, 27, 39, 52
#                      and stops when the pruner says so; its value is the error at epoch 52
#                      (metabo.bench.problems.pruning).
#   optimisers:        OPTIMIZERS (default metabo, tpe (multivariate TPE) and random).
#   pruners:           median (MedianPruner, 5 startup trials, 4 warm-up epochs) and hyperband (HyperbandPruner,
#                      min_resource 1, max_resource 52, reduction factor 3); runs are stored as <optimiser>@<pruner>
#                      (metabo.bench.pruners), so the pruners never mix.
# SEEDS seeds (default 5) x BUDGET trials (default 50, pruned ones included) per pruner into STORE (default
# bench_results/pruning/results.db), then the report: report.md, summary.json and plots beside the store, at
# REPORT_BUDGETS trials (default half and all of BUDGET): per pruner and optimiser the regret of the best complete
# value, the epochs consumed, the fraction pruned and the re-proposed pruned points, with paired differences from
# tpe under the same pruner. PROBLEMS (default 'pruning/lcbench/*') and PRUNERS (default 'median hyperband') narrow
# it, e.g. for a tiny check: SEEDS=1 BUDGET=10 PROBLEMS=pruning/lcbench/7593 STORE=/tmp/pruning/results.db.
# Resumable: complete runs are skipped. Usage: benchmarks/pruning.sh [extra `metabo bench` options]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/pruning/results.db}
SEEDS=${SEEDS:-5}
BUDGET=${BUDGET:-50}
WORKERS=${WORKERS:-2}
PROBLEMS=${PROBLEMS:-pruning/lcbench/*}
PRUNERS=${PRUNERS:-median hyperband}
OPTIMIZERS=${OPTIMIZERS:-metabo,tpe,random}
run=(metabo bench --problems "$PROBLEMS" --optimizers "$OPTIMIZERS" --seeds "$SEEDS" --budget "$BUDGET"
     --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress)
status=0  # a failed run (exit 1) still lets the other runs and the report go ahead; the script then exits 1
for pruner in $PRUNERS; do
    "${run[@]}" --pruner "$pruner" "$@" || status=$?
done
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-$((BUDGET / 2)),$BUDGET}" \
    --out "$(dirname "$STORE")/report" --baseline tpe
exit "$status"
