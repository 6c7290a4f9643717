#!/usr/bin/env bash
# An ablation of metabo: default metabo and the variants named in $1 (comma list) on 12 BBOB functions in 2-D and
# 12 in 5-D (instance 1) plus YAHPO validation instances, 3 seeds x 50 evaluations, into STORE, with a report.
# Used by ablation_min_distance.sh; the report adds each variant's paired difference from metabo.
# Usage: ablation.sh VARIANTS STORE [EXTRA_YAHPO]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VARIANTS=$1
STORE=$2
WORKERS=${WORKERS:-2}
YAHPO="yahpo/lcbench/167152,yahpo/rbv2_xgboost/1497,yahpo/rbv2_rpart/4134,yahpo/iaml_glmnet/41146,yahpo/iaml_glmnet/1489"
YAHPO="$YAHPO${3:+,$3}"
BBOB="bbob/f0[13579]_i1_d2,bbob/f1[13579]_i1_d2,bbob/f2[13]_i1_d2,bbob/f0[2468]_i1_d5,bbob/f1[02468]_i1_d5,bbob/f2[024]_i1_d5"
metabo bench --reference --problems "$YAHPO" --seeds 1 --store "$STORE" --no-progress
metabo bench --problems "$BBOB,$YAHPO" --optimizers "metabo,$VARIANTS" --seeds "${SEEDS:-3}" --budget 50 \
    --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress
metabo report --store "$STORE" --budgets 10,25,50 --out "$(dirname "$STORE")/report" --baseline metabo
