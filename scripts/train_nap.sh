#!/usr/bin/env bash
# Train the learned acquisition (NAP, `metabo nap`) for the three YAHPO scenarios that have train instances, each
# from the scenario's fine-tuned model, on a GPU when there is one (--device auto) and on the CPU otherwise.
# Resumable: rerun the same line to continue from the checkpoints under $RUNS. Seeded (--seed 0).
#   OUT: where the models and cards go (default runs/nap); RUNS: checkpoints (default runs/nap/runs);
#   MINUTES per scenario (default 2.2), EPISODES per PPO iteration (default 128), ITERATIONS at most (1000);
#   METABO: how to call the CLI (default `metabo`; `python3 -m metabo.cli` where metabo is not installed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-runs/nap}
RUNS=${RUNS:-runs/nap/runs}
MINUTES=${MINUTES:-2.2}
EPISODES=${EPISODES:-128}
ITERATIONS=${ITERATIONS:-1000}
METABO=${METABO:-metabo}
for scenario in ${SCENARIOS:-lcbench rbv2_xgboost rbv2_rpart}; do
    $METABO nap --yahpo "$scenario" --base "src/metabo/weights/yahpo_$scenario.safetensors" \
        --out "$OUT/yahpo_${scenario}_nap.safetensors" --device auto --run-dir "$RUNS/$scenario" --resume \
        --checkpoint-every 10 --iterations "$ITERATIONS" --episodes "$EPISODES" --max-minutes "$MINUTES" --seed 0 \
        --no-progress
done
