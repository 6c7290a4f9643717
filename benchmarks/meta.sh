#!/usr/bin/env bash
# Meta-learning bars (issue 4) on YAHPO validation instances, 10 seeds, 50 evaluations.
#   lcbench/167149 and rbv2_xgboost/1049: every peer, the transfer baselines (warm start, Syne Tune's transfer
#   searchers) and metabo without related data (metabo), with related data in context (metabo-related) and with
#   related data plus the scenario's fine-tuned model (metabo-transfer).
# Related data and fine-tuning use YAHPO *train* instances only (metabo.meta); validation instances are never seen.
# Writes bench_results/meta/results.db and its report. Stages are resumable: rerun to finish an interrupted run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/meta/results.db}
WORKERS=${WORKERS:-2}
SEEDS=${SEEDS:-10}
PROBLEMS=${PROBLEMS:-"yahpo/lcbench/167149,yahpo/rbv2_xgboost/1049"}
PEERS=${PEERS:-"random,tpe,gp,cmaes,botorch,smac-hpo,smac-bb,hebo,warmstart-tpe,synetune-quantile,synetune-boundingbox,synetune-zeroshot"}
METABO=${METABO:-"metabo,metabo-related,metabo-transfer"}
metabo bench --reference --problems "$PROBLEMS" --seeds 1 --store "$STORE" --no-progress
for OPTIMIZERS in "$METABO" "$PEERS"; do
    metabo bench --problems "$PROBLEMS" --optimizers "$OPTIMIZERS" --seeds "$SEEDS" --budget 50 --store "$STORE" \
        --workers "$WORKERS" --threads 1 --no-progress "$@"
done
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-5,10,20,25,50}" --out "$(dirname "$STORE")/report"
