#!/usr/bin/env bash
# Every peer on every non-BBOB problem family, side by side: one YAHPO instance of each of three scenarios
# (validation split), one scikit-learn tuning task and one HiGHS MIP instance; 2 seeds (SEEDS), 30 evaluations
# (every peer takes proportionally longer per seed).
# Peers HEBO, SMAC3 and BoTorch run in their own virtualenvs (built on first use; see `metabo bench --setup-peers`).
# Writes bench_results/families/results.db; about 40 minutes per seed on one core (HEBO and SMAC take seconds per
# suggestion, and the random medians of the sklearn and HiGHS problems take a few minutes once), plus the
# reference searches of the sklearn and HiGHS problems (REF_EVALS evaluations each, about 20 minutes at 2000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/families/results.db}
WORKERS=${WORKERS:-2}
PROBLEMS="yahpo/lcbench/167149,yahpo/rbv2_xgboost/1049,yahpo/iaml_glmnet/1067,sklearn/svm/diabetes/mse,highs/knapsack/0"
OPTIMIZERS="metabo,random,tpe,gp,cmaes,botorch,smac-hpo,smac-bb,hebo,warmstart-tpe"
# Long reference searches: before the runs where evaluations are cheap (YAHPO surrogates take about a millisecond);
# after them for the costly sklearn and HiGHS problems, so their local search starts from the best run's point.
# Either way the reference optimum is the best value any search or run has seen.
metabo bench --reference --problems "yahpo/lcbench/167149,yahpo/rbv2_xgboost/1049,yahpo/iaml_glmnet/1067" \
    --seeds 1 --store "$STORE" --no-progress
metabo bench --problems "$PROBLEMS" --optimizers "$OPTIMIZERS" --seeds "${SEEDS:-2}" --budget 30 --store "$STORE" \
    --workers "$WORKERS" --threads 1 --no-progress "$@"
pids=()
for costly in sklearn/svm/diabetes/mse highs/knapsack/0; do  # one process each, side by side
    metabo bench --reference --problems "$costly" --reference-evals "${REF_EVALS:-2000}" --seeds 1 --store "$STORE" \
        --no-progress &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-10,30}" --out "$(dirname "$STORE")/report"
