#!/usr/bin/env bash
# Conditional and many-valued parameters (issue 18): metabo against Optuna's samplers on define-by-run conditional
# problems and on problems with a 50-choice categorical.
#   conditional/cash/*:          choose a scikit-learn model (SVM, random forest, k-NN, elastic-net linear) and its
#                                own hyperparameters, on breast_cancer/logloss, digits/error and diabetes/mse
#                                (metabo.bench.problems.conditional);
#   conditional/rbv2_xgboost/*:  YAHPO rbv2_xgboost with its booster-conditional space, on the 8 validation
#                                instances of the meta-learning stage;
#   categorical/*:               eight BBOB functions (every group) in 4 dimensions whose first coordinate is a
#                                50-choice categorical (shuffled levels; metabo.bench.problems.categorical).
#   optimisers:                  OPTIMIZERS (default metabo, tpe-group (multivariate TPE with group=True), tpe
#                                (multivariate), gp (Optuna's GPSampler), smac-hpo (SMAC3's HPO facade, told the
#                                conditions) and random).
# SEEDS seeds (default 5) x BUDGET trials (default 50) into STORE_DIR (default bench_results/conditional): one store
# per problem set (cash.db, xgboost.db, categorical.db), so they can run side by side (PARTS=cash, ...); then one report per
# store at REPORT_BUDGETS (default 10,25,50) with paired differences from tpe-group.
# Resumable: complete runs are skipped. Usage: benchmarks/conditional.sh [extra `metabo bench` options]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE_DIR=${STORE_DIR:-bench_results/conditional}
SEEDS=${SEEDS:-5}
BUDGET=${BUDGET:-50}
WORKERS=${WORKERS:-1}
PARTS=${PARTS:-cash xgboost categorical}
OPTIMIZERS=${OPTIMIZERS:-metabo,tpe-group,tpe,gp,smac-hpo,random}
XGBOOST_INSTANCES=${XGBOOST_INSTANCES:-40966,1497,31,1067,40983,1457,14,1056}
declare -A PROBLEMS=(
    [cash]="conditional/cash/*"
    [categorical]="categorical/*"
    [xgboost]="$(echo "$XGBOOST_INSTANCES" | sed 's|\([^,]*\)|conditional/rbv2_xgboost/\1|g')"
)
status=0  # a failed run (exit 1) still lets the other parts and the reports go ahead; the script then exits 1
for part in $PARTS; do
    metabo bench --problems "${PROBLEMS[$part]}" --optimizers "$OPTIMIZERS" --seeds "$SEEDS" --budget "$BUDGET" \
        --store "$STORE_DIR/$part.db" --workers "$WORKERS" --threads 1 --no-progress "$@" || status=$?
    metabo report --store "$STORE_DIR/$part.db" --budgets "${REPORT_BUDGETS:-10,25,50}" \
        --out "$STORE_DIR/report_$part" --baseline tpe-group
done
exit "$status"
