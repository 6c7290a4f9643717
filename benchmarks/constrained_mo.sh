#!/usr/bin/env bash
# Constraints and several objectives (issue 17): metabo against Optuna's samplers.
#   constrained/*: Gardner's problem, Branin with a disc constraint, the welded beam, the pressure vessel and a random
#                  forest under a tree-node budget (scikit-learn digits); metabo, gp, tpe, random.
#   mo/*:          ZDT1-3 (6-D), DTLZ2 with 2 and 3 objectives, XGBoost error vs log training time (YAHPO
#                  rbv2_xgboost, validation instance 31; where the YAHPO data are present); the same plus nsgaii.
# SEEDS seeds (default 5) x BUDGET evaluations (default 50) into STORE (default
# bench_results/constrained_mo/results.db), then a long reference search for the random forest problem (its optimum
# is unknown; REF_EVALS evaluations, default 1000, a few minutes), then the report: report.md (the Markdown summary),
# summary.json and plots beside the store, at REPORT_BUDGETS (default a fifth, half and all of BUDGET), with paired
# differences from metabo.
# HEBO and SMAC are left out: their adapters speak single-objective, unconstrained studies only.
# Resumable: complete runs are skipped. Usage: benchmarks/constrained_mo.sh [extra `metabo bench` options]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/constrained_mo/results.db}
SEEDS=${SEEDS:-5}
BUDGET=${BUDGET:-50}
WORKERS=${WORKERS:-2}
run=(metabo bench --seeds "$SEEDS" --budget "$BUDGET" --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress)
status=0  # a failed run (exit 1) still lets the other runs and the report go ahead; the script then exits 1
"${run[@]}" --problems "constrained/*" --optimizers metabo,gp,tpe,random "$@" || status=$?
"${run[@]}" --problems "mo/*" --optimizers metabo,gp,tpe,random,nsgaii "$@" || status=$?
metabo bench --reference --problems constrained/rf_digits_nodes --reference-evals "${REF_EVALS:-1000}" --seeds 1 \
    --store "$STORE" --no-progress
metabo report --store "$STORE" --budgets "${REPORT_BUDGETS:-$((BUDGET / 5)),$((BUDGET / 2)),$BUDGET}" \
    --out "$(dirname "$STORE")/report" --baseline metabo
exit "$status"
