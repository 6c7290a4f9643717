#!/usr/bin/env bash
# Transfer baselines on YAHPO validation instances that have related (train-instance) studies: Syne Tune's transfer
# searchers and the warm-start baseline, next to metabo (zero-shot, no related data yet), TPE and GP.
# 2 problems x 3 seeds x 30 evaluations; writes bench_results/transfer/results.db. About 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/transfer/results.db}
WORKERS=${WORKERS:-2}
PROBLEMS="yahpo/lcbench/167149,yahpo/rbv2_xgboost/1049"
OPTIMIZERS="metabo,tpe,gp,random,warmstart-tpe,synetune-quantile,synetune-boundingbox,synetune-zeroshot"
metabo bench --reference --problems "$PROBLEMS" --seeds 1 --store "$STORE" --no-progress
metabo bench --problems "$PROBLEMS" --optimizers "$OPTIMIZERS" --seeds 3 --budget 30 --store "$STORE" \
    --workers "$WORKERS" --threads 1 --no-progress "$@"
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-5,10,30}" --out "$(dirname "$STORE")/report"
