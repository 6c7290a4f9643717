#!/usr/bin/env bash
# Reproduce BENCHMARKS.md from scratch on a fresh clone (after `pip install -e '.[bench]'`).
#
# Stages (each resumable: rerunning skips finished runs):
#   1. BBOB zero-shot, the core bar: 24 functions x d2,d5 x 5 seeds x budget 50; metabo, tpe, random, gp, and
#      the ablation metabo-refine10.
#   2. Problem families: every peer on YAHPO, scikit-learn and HiGHS problems (benchmarks/families.sh), and the
#      transfer baselines (Syne Tune, warm start) on YAHPO instances with related studies (benchmarks/transfer.sh).
#   3. Suggestion speed against n (benchmarks/speed.py; run it on an otherwise idle machine).
#   4. Compute-to-quality curve, if the pretraining run folder with its snapshots exists (RUN=runs/...).
#   5. Compose BENCHMARKS.md with `metabo report --compose`.
# On 2 cores with 2 workers, stage 1 takes about an hour, stage 2 about an hour, stage 4 about 10 minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORKERS=${WORKERS:-2}
RUN=${RUN:-runs/tnp-d128-l4-s0}

python benchmarks/bbob_zero_shot.py --optimizers metabo,tpe,random,gp,metabo-refine10 --workers "$WORKERS" --no-progress
WORKERS=$WORKERS bash benchmarks/families.sh
WORKERS=$WORKERS bash benchmarks/transfer.sh
python benchmarks/speed.py --threads 2
fragments=(--fragment "Suggestion speed=bench_results/speed/speed.md")
if [ -d "$RUN/snapshots" ]; then
    python benchmarks/compute_curve.py --run "$RUN" --workers "$WORKERS" --no-progress
    fragments+=(--fragment "Compute to quality=bench_results/compute_curve/compute_curve.md")
fi
metabo report --compose BENCHMARKS.md \
    --intro @benchmarks/intro.md \
    --section "BBOB zero-shot: metabo against TPE, random search and Optuna's GP=bench_results/bbob/results.db::metabo,tpe,random,gp" \
    --section "Ablation: 2 (default) against 10 gradient refinement steps=bench_results/bbob/results.db::metabo,metabo-refine10,gp" \
    --section "Problem families, every peer=bench_results/families/results.db" \
    --section "Transfer baselines on YAHPO (metabo still zero-shot)=bench_results/transfer/results.db" \
    "${fragments[@]}"
