#!/usr/bin/env bash
# Wide search spaces (issue 18): BBOB in 20 and 40 dimensions, 12 functions covering all five BBOB groups
# (separable f01 f02 f03; moderate conditioning f06 f08; high conditioning f10 f11 f13; multimodal with adequate
# structure f15 f17; multimodal with weak structure f20 f21), instance 1.
#   optimisers: OPTIMIZERS (default metabo, metabo-subspace (the 16-input default model, a random subspace of
#               parameters per suggestion), gp (Optuna's GPSampler), tpe (multivariate), cmaes and random).
# SEEDS seeds (default 3) x BUDGET trials (default 100) into STORE (default bench_results/wide/results.db), then the
# report at REPORT_BUDGETS (default 25,50,100) with paired differences from BASELINE (default gp).
# Resumable: complete runs are skipped. Usage: benchmarks/wide.sh [extra `metabo bench` options]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/wide/results.db}
SEEDS=${SEEDS:-3}
BUDGET=${BUDGET:-100}
WORKERS=${WORKERS:-1}
OPTIMIZERS=${OPTIMIZERS:-metabo,metabo-subspace,gp,tpe,cmaes,random}
FUNCTIONS=${FUNCTIONS:-01 02 03 06 08 10 11 13 15 17 20 21}
DIMS=${DIMS:-20 40}
problems=""
for d in $DIMS; do for f in $FUNCTIONS; do problems="$problems,bbob/f${f}_i1_d${d}"; done; done
status=0
metabo bench --problems "${problems#,}" --optimizers "$OPTIMIZERS" --seeds "$SEEDS" --budget "$BUDGET" \
    --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress "$@" || status=$?
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-25,50,100}" --out "$(dirname "$STORE")/report" \
    --baseline "${BASELINE:-gp}"
exit "$status"
