#!/usr/bin/env bash
# Ablation of TNPSampler's min_distance (default 0.01: never propose a point within 0.01, max-norm in the unit
# cube, of an evaluated or pending one) against min_distance=0 (bench name metabo-repeats, the behaviour before
# stop 9): the 24 BBOB functions and 5 YAHPO validation instances of ablation_compress.sh, plus the two
# problems where re-proposed incumbents were seen (iaml_glmnet/40981 zero-shot, rbv2_xgboost/1049 with transfer
# is in meta.sh), 3 seeds x 50 evaluations. Writes bench_results/ablation_min_distance/results.db and its report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/ablation_min_distance/results.db}
WORKERS=${WORKERS:-2}
YAHPO="yahpo/lcbench/167152,yahpo/rbv2_xgboost/1497,yahpo/rbv2_rpart/4134,yahpo/iaml_glmnet/41146,yahpo/iaml_glmnet/1489"
YAHPO="$YAHPO,yahpo/iaml_glmnet/40981"
BBOB="bbob/f0[13579]_i1_d2,bbob/f1[13579]_i1_d2,bbob/f2[13]_i1_d2,bbob/f0[2468]_i1_d5,bbob/f1[02468]_i1_d5,bbob/f2[024]_i1_d5"
metabo bench --reference --problems "$YAHPO" --seeds 1 --store "$STORE" --no-progress
metabo bench --problems "$BBOB,$YAHPO" --optimizers metabo,metabo-repeats --seeds "${SEEDS:-3}" --budget 50 \
    --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress
metabo report --store "$STORE" --budgets 10,25,50 --out "$(dirname "$STORE")/report"
