#!/usr/bin/env bash
# Ablation of TNPSampler(compress_worse=True) (bench name metabo-compress) against default metabo on
# benchmarks/ablation.sh's problems (24 BBOB functions, 5 YAHPO validation instances, 3 seeds x 50 evaluations).
# Writes bench_results/ablation_compress/ (about an hour on one core).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash benchmarks/ablation.sh metabo-compress "${STORE:-bench_results/ablation_compress/results.db}"
