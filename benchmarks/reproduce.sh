#!/usr/bin/env bash
# Reproduce BENCHMARKS.md from scratch on a fresh clone (after `pip install -e '.[bench]'`).
#
# Stages (each resumable: rerunning skips finished runs):
#   1. BBOB zero-shot, the core bar: 24 functions x d2,d5 x 5 seeds x budget 50; metabo, tpe, random, gp.
#   2. Problem families: every peer on YAHPO, scikit-learn and HiGHS problems (benchmarks/families.sh).
#   3. Suggestion speed against n (benchmarks/speed.py; run it on an otherwise idle machine).
#   4. Compute-to-quality curve, if the pretraining run folder with its snapshots exists (RUN=runs/...).
#   5. metabo report --compose BENCHMARKS.md.
# Stages 1 and 2 take about 1.5 h and 1 h with 2 workers on 2 cores; stage 4 about 15 min.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORKERS=${WORKERS:-2}
RUN=${RUN:-runs/tnp-d128-l4-s0}

python benchmarks/bbob_zero_shot.py --workers "$WORKERS" --no-progress
WORKERS=$WORKERS bash benchmarks/families.sh
python benchmarks/speed.py --threads 2
fragments=(--fragment "Suggestion speed=bench_results/speed/speed.md")
if [ -d "$RUN/snapshots" ]; then
    python benchmarks/compute_curve.py --run "$RUN" --workers "$WORKERS" --no-progress
    fragments+=(--fragment "Compute to quality=bench_results/compute_curve/compute_curve.md")
fi
metabo report --compose BENCHMARKS.md \
    --section "BBOB zero-shot (24 functions, d2 and d5, 5 seeds)=bench_results/bbob/results.db" \
    --section "Problem families, all peers (2 seeds, 30 evaluations)=bench_results/families/results.db" \
    "${fragments[@]}"
