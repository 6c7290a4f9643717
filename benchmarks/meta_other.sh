#!/usr/bin/env bash
# The other two meta-learning bars, 10 seeds x 50 evaluations on YAHPO validation instances:
#   iaml_glmnet (all four validation instances: 40981, 41146, 1489, 1067): no train instances, so metabo runs
#   zero-shot against every peer, with its ablations metabo-nocompress (no worse-half compression) and
#   metabo-noclip (no soft clipping). (The variants metabo-bounds, metabo-bounds-ranks and metabo-bounds-clip were
#   measured here too; they gained nothing and were deleted: see BENCHMARKS.md.)
#   rbv2_rpart/41138: metabo with meta-learning (metabo-transfer: its own train split and scenario model) against
#   the transfer baselines and every peer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/meta_other/results.db}
WORKERS=${WORKERS:-2}
SEEDS=${SEEDS:-10}
BUDGET=${BUDGET:-50}
GLMNET=${GLMNET:-yahpo/iaml_glmnet/40981,yahpo/iaml_glmnet/41146,yahpo/iaml_glmnet/1489,yahpo/iaml_glmnet/1067}
RPART=${RPART:-yahpo/rbv2_rpart/41138}
metabo bench --reference --problems "$GLMNET,$RPART" --seeds 1 --store "$STORE" --no-progress
metabo bench --problems "$GLMNET" \
    --optimizers "metabo,metabo-nocompress,metabo-noclip,random,tpe,gp,cmaes,botorch,smac-hpo,smac-bb,hebo" \
    --seeds "$SEEDS" --budget "$BUDGET" --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress
metabo bench --problems "$RPART" \
    --optimizers "metabo-transfer,metabo,warmstart-tpe,synetune-zeroshot,random,tpe,cmaes,smac-hpo,gp,botorch,smac-bb,hebo" \
    --seeds "$SEEDS" --budget "$BUDGET" --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-5,10,25,50}" --out "$(dirname "$STORE")/report"
