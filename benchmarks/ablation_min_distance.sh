#!/usr/bin/env bash
# Ablation of TNPSampler's two rules against re-proposing the incumbent (defaults min_distance=0.01: never
# propose a point within 0.01, max-norm in the unit cube, of an evaluated or pending one; improvement_margin=1.0:
# EI counts improvement beyond the best value plus one predictive sd there) against both off (bench name
# metabo-repeats, the earlier acquisition), on benchmarks/ablation.sh's problems plus iaml_glmnet/40981, where
# plain metabo stalled on its incumbent. Writes bench_results/ablation_min_distance/ (about 15 minutes, 2 workers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash benchmarks/ablation.sh metabo-repeats "${STORE:-bench_results/ablation_min_distance/results.db}" yahpo/iaml_glmnet/40981
