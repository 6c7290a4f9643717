#!/usr/bin/env bash
# The learned acquisition (NAP) against EI from the same model, and against NAP trained without the auxiliary
# loss, next to metabo-transfer (when this ran: EI from the fine-tuned model NAP starts from). YAHPO lcbench/167149 (validation),
# 10 seeds, 50 evaluations, into the meta-learning store so the report can set them beside the peers.
# The shipped NAP model is src/metabo/weights/yahpo_lcbench_nap.safetensors (its card names its command); the
# ablation without the auxiliary loss is trained here into runs/nap/ if it is not there yet (about 25 minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STORE=${STORE:-bench_results/meta/results.db}
WORKERS=${WORKERS:-2}
SEEDS=${SEEDS:-10}
BUDGET=${BUDGET:-50}
NOAUX=${NOAUX:-runs/nap/lcbench-aux0.safetensors}
if [ ! -f "$NOAUX" ]; then
    metabo nap --yahpo lcbench --base src/metabo/weights/yahpo_lcbench.safetensors --out "$NOAUX" --aux-coef 0 \
        --max-minutes "${NAP_MINUTES:-25}" --seed 0 --threads 1 --no-progress
fi
metabo bench --reference --problems yahpo/lcbench/167149 --seeds 1 --store "$STORE" --no-progress
metabo bench --problems yahpo/lcbench/167149 --optimizers "metabo-nap,metabo-nap-ei,metabo-nap:$NOAUX,metabo-transfer" \
    --seeds "$SEEDS" --budget "$BUDGET" --store "$STORE" --workers "$WORKERS" --threads 1 --no-progress
