#!/usr/bin/env bash
# Meta-learning bars (issue 4) on YAHPO validation instances lcbench/167149 and rbv2_xgboost/1049, 50 evaluations:
#   metabo without related data (metabo), with related data in context (metabo-related) and with related data plus
#   the scenario's fine-tuned model (metabo-transfer), the transfer baselines (warm start, Syne Tune's transfer
#   searchers) and every other peer.
# Seeds: 10 (SEEDS) for metabo and the peers that take seconds to a minute per run, and 10 (SEEDS_SLOW) for the slow
# ones (GPSampler, SMAC's BlackBox facade, HEBO and two Syne Tune searchers take 2-6 minutes per 50-evaluation run
# here; about an hour more with 2 workers).
# Related data and fine-tuning use YAHPO *train* instances only (metabo.meta); validation instances are never seen.
# Writes bench_results/meta/results.db and its report. Resumable: rerun to finish an interrupted run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/meta/results.db}
WORKERS=${WORKERS:-2}
SEEDS=${SEEDS:-10}
SEEDS_SLOW=${SEEDS_SLOW:-10}
BUDGET=${BUDGET:-50}
PROBLEMS=${PROBLEMS:-"yahpo/lcbench/167149,yahpo/rbv2_xgboost/1049"}
METABO="metabo,metabo-related,metabo-transfer"
PEERS="random,tpe,cmaes,botorch,smac-hpo,warmstart-tpe,synetune-zeroshot"
SLOW_PEERS="gp,synetune-quantile,synetune-boundingbox,smac-bb,hebo"
run() {  # optimizers seeds
    metabo bench --problems "$PROBLEMS" --optimizers "$1" --seeds "$2" --budget "$BUDGET" --store "$STORE" \
        --workers "$WORKERS" --threads 1 --no-progress
}
metabo bench --reference --problems "$PROBLEMS" --seeds 1 --store "$STORE" --no-progress
run "$METABO" "$SEEDS"
run "$PEERS" "$SEEDS"
run "$SLOW_PEERS" "$SEEDS_SLOW"
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-5,10,20,25,50}" --out "$(dirname "$STORE")/report"
