#!/usr/bin/env bash
# Ablation of TNPSampler's defaults against re-proposing the incumbent and for the value scale. Default metabo
# (min_distance=0.01: never propose a point within 0.01, max-norm in the unit cube, of an evaluated or pending one;
# ValueTransformConfig's compress_worse=True: the worse half of the normalised values log-compressed toward their
# median; clip_worse=3: raw values more than 3 robust sds worse than the median soft-clipped) against
# metabo-repeats (min_distance=0, the earlier acquisition), metabo-nocompress (compress_worse=False) and
# metabo-noclip (clip_worse=0), on benchmarks/ablation.sh's problems plus iaml_glmnet/40981, where plain metabo
# stalled on its incumbent. (metabo-margin, an improvement margin in EI, was measured here too; it gained nothing
# and was deleted: see BENCHMARKS.md.)
# Writes bench_results/ablation_min_distance/ with a report of paired differences from metabo (about 45 minutes,
# 2 workers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash benchmarks/ablation.sh metabo-repeats,metabo-nocompress,metabo-noclip "${STORE:-bench_results/ablation_min_distance/results.db}" \
    yahpo/iaml_glmnet/40981
