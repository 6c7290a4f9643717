#!/usr/bin/env bash
# Past studies as users have them (issue 16, item 3): the meta-learning stage with optimisation traces as related
# studies, and scenario models fine-tuned on random evaluations and traces together.
#   1. traces: one study per train instance of each scenario, run by TPE, GP or zero-shot metabo in turn, 100
#      trials, into $TRACES/<scenario>.db (benchmarks/trace_corpus.py; seeded, resumable; the corpora this
#      session wrote are committed under benchmarks/stores/traces/ and used unless FRESH=1);
#   2. fine-tuning on both corpora (lcbench and rbv2_rpart; the shipped models were fine-tuned on random
#      evaluations only): $MODELS/yahpo_<scenario>.safetensors, read by the bench name metabo-transfer:$MODELS;
#   3. the stage with both corpora for every transfer optimiser (metabo's and the peers'), CORPUS=both into
#      $OUT (bench_results/meta_traces), and with the traces alone for metabo-transfer (bench_results/meta_tracesonly);
#      the fine-tuned models on the random corpus join the stage's own stores (bench_results/meta_stage).
# Then: python benchmarks/meta_stage_summary.py --dir bench_results/meta_traces
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TRACES=${TRACES:-bench_results/traces}
MODELS=${MODELS:-runs/traces}
WORKERS=${WORKERS:-2}
mkdir -p "$TRACES"
for scenario in lcbench rbv2_rpart rbv2_xgboost; do
    committed="benchmarks/stores/traces/$scenario.db.xz"  # the corpora as this session wrote them
    if [ ! -e "$TRACES/$scenario.db" ] && [ -f "$committed" ] && [ "${FRESH:-0}" != 1 ]; then
        python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
            "$committed" "$TRACES/$scenario.db"
    fi
    python benchmarks/trace_corpus.py --scenario "$scenario" --trials 100 --seed 0 --out "$TRACES"
done
mkdir -p "$MODELS"
for scenario in lcbench rbv2_rpart; do
    [ -f "$MODELS/yahpo_$scenario.safetensors" ] || metabo finetune --yahpo "$scenario" \
        --storage "sqlite:///$TRACES/$scenario.db" --out "$MODELS/yahpo_$scenario.safetensors" \
        --base src/metabo/weights/multitask.safetensors --seed 0 --threads 1 --max-minutes 40 --no-progress
done
PARTS=metabo SCENARIOS=lcbench,rbv2_rpart METABO="metabo-transfer:$MODELS,metabo-related" WORKERS=$WORKERS \
    bash benchmarks/meta_stage.sh
PARTS=metabo SCENARIOS=rbv2_xgboost METABO=metabo-related WORKERS=$WORKERS bash benchmarks/meta_stage.sh
OUT=bench_results/meta_traces CORPUS=both TRACES=$TRACES SCENARIOS=lcbench,rbv2_rpart PARTS=metabo,peers,slow \
    METABO="metabo-transfer,metabo-transfer:$MODELS,metabo-related" WORKERS=$WORKERS bash benchmarks/meta_stage.sh
OUT=bench_results/meta_traces CORPUS=both TRACES=$TRACES SCENARIOS=rbv2_xgboost PARTS=metabo,peers,slow \
    METABO=metabo-transfer WORKERS=$WORKERS bash benchmarks/meta_stage.sh
OUT=bench_results/meta_tracesonly CORPUS=traces TRACES=$TRACES SCENARIOS=lcbench,rbv2_rpart PARTS=metabo \
    METABO=metabo-transfer WORKERS=$WORKERS bash benchmarks/meta_stage.sh
python benchmarks/meta_stage_summary.py --dir bench_results/meta_traces --out bench_results/meta_traces/summary.md
