#!/usr/bin/env bash
# Breadth check for meta-learning: every lcbench validation instance and four rbv2_xgboost validation instances,
# metabo with meta-learning (metabo-transfer) and without (metabo) against the transfer baselines that were
# strongest early in benchmarks/meta.sh (warm start, Syne Tune's zero-shot searcher) and random search.
# 5 seeds x 20 evaluations; writes bench_results/meta_breadth/results.db and its report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/meta_breadth/results.db}
WORKERS=${WORKERS:-2}
SEEDS=${SEEDS:-5}
BUDGET=${BUDGET:-20}
PROBLEMS=${PROBLEMS:-"yahpo/lcbench/*,yahpo/rbv2_xgboost/40966,yahpo/rbv2_xgboost/1497,yahpo/rbv2_xgboost/31,yahpo/rbv2_xgboost/1067"}
metabo bench --reference --problems "$PROBLEMS" --seeds 1 --store "$STORE" --no-progress
metabo bench --problems "$PROBLEMS" --optimizers "metabo-transfer,metabo,warmstart-tpe,synetune-zeroshot,random" \
    --seeds "$SEEDS" --budget "$BUDGET" --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-1,5,10,20}" --out "$(dirname "$STORE")/report"
