#!/usr/bin/env bash
# Ablation of TNPSampler's rules against re-proposing the incumbent. Default metabo (min_distance=0.01: never
# propose a point within 0.01, max-norm in the unit cube, of an evaluated or pending one) against metabo-repeats
# (min_distance=0, the earlier acquisition) and metabo-margin (also improvement_margin=1: EI counts improvement
# beyond the best value plus one predictive sd there), on benchmarks/ablation.sh's problems plus
# iaml_glmnet/40981, where plain metabo stalled on its incumbent. Writes bench_results/ablation_min_distance/
# (about 25 minutes, 2 workers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash benchmarks/ablation.sh metabo-repeats,metabo-margin "${STORE:-bench_results/ablation_min_distance/results.db}" \
    yahpo/iaml_glmnet/40981
