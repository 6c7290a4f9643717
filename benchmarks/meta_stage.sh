#!/usr/bin/env bash
# The meta-learning stage (issue 16): YAHPO validation instances of lcbench (all 7), rbv2_xgboost and rbv2_rpart
# (the first 8 of splits.json's validation list each), 50 evaluations.
#   metabo group: metabo-transfer (related studies of the train instances in context, read by the scenario's
#     fine-tuned model where fine-tuning paid, else the multi-task model) and metabo (zero-shot), 5 seeds (SEEDS=n: n); METABO=... runs other metabo variants in this group, e.g. the
#     learned acquisition against EI from the same model (metabo-nap,metabo-nap-ei) or the levers under test;
#   peers group: TPE, random search and the transfer baselines warmstart-tpe and synetune-zeroshot, 5 seeds;
#   gp group: Optuna's GPSampler, 3 seeds;
#   slow group: SMAC3 (HPO facade), HEBO and Syne Tune's quantile and bounding-box searchers, 3 seeds on the first
#     4 instances of each scenario.
# One store per scenario under $OUT (default bench_results/meta_stage), each reported with paired differences
# from GP. Resumable and divisible: PARTS=metabo,peers (default all four) runs only those groups, SCENARIOS
# only those scenarios, and a rerun skips every complete run. Related data and fine-tuning use train instances
# only; validation instances are never seen in training; reserved ones are never used.
# The stores as they stood at the end of the session that ran the stage are committed, compressed, under
# benchmarks/stores/meta_stage/: a missing store under $OUT starts from its committed copy, so a rerun only adds
# the runs still missing (the slow group, new variants). FRESH=1 starts from empty stores instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-bench_results/meta_stage}
WORKERS=${WORKERS:-2}
BUDGET=${BUDGET:-50}
PARTS=${PARTS:-metabo,peers,gp,slow}
SCENARIOS=${SCENARIOS:-lcbench,rbv2_xgboost,rbv2_rpart}
METABO=${METABO:-metabo-transfer,metabo}
SEEDS=${SEEDS:-5}  # of the metabo group
CORPUS=${CORPUS:-random}
TRACES=${TRACES:-bench_results/traces}
declare -A INSTANCES=(
    [lcbench]="7593,167149,167152,168868,189866,189873,189906"
    [rbv2_xgboost]="40966,1497,31,1067,40983,1457,14,1056"
    [rbv2_rpart]="41138,4134,1590,458,1464,41142,40668,4541"
)
names() {  # scenario, instance list -> problem names
    local scenario=$1 out="" inst
    IFS=, read -ra list <<< "$2"
    for inst in "${list[@]}"; do out+="${out:+,}yahpo/$scenario/$inst"; done
    echo "$out"
}
first4() { cut -d, -f1-4 <<< "$1"; }
run() {  # store, problems, optimizers, seeds
    metabo bench --problems "$2" --optimizers "$3" --seeds "$4" --budget "$BUDGET" --store "$1" \
        --workers "$WORKERS" --threads 1 --no-progress --related-corpus "$CORPUS" --traces-dir "$TRACES"
}
mkdir -p "$OUT"
IFS=, read -ra scenarios <<< "$SCENARIOS"
for scenario in "${scenarios[@]}"; do
    store="$OUT/$scenario.db"
    committed="benchmarks/stores/$(basename "$OUT")/$scenario.db.xz"  # this stage's own committed store, if any
    [ -f "$committed" ] || committed="benchmarks/stores/meta_stage/$scenario.db.xz"
    if [ ! -e "$store" ] && [ -f "$committed" ] && [ "${FRESH:-0}" != 1 ]; then
        python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
            "$committed" "$store"
        if [ "$CORPUS" != random ] && [[ "$committed" == benchmarks/stores/meta_stage/* ]]; then
            python3 benchmarks/store_without_transfer.py "$store"
        fi
    fi
    all=$(names "$scenario" "${INSTANCES[$scenario]}")
    four=$(names "$scenario" "$(first4 "${INSTANCES[$scenario]}")")
    metabo bench --reference --problems "$all" --seeds 1 --store "$store" --no-progress
    [[ ",$PARTS," == *,metabo,* ]] && run "$store" "$all" "$METABO" "$SEEDS"
    [[ ",$PARTS," == *,peers,* ]] && run "$store" "$all" "tpe,random,warmstart-tpe,synetune-zeroshot" 5
    [[ ",$PARTS," == *,gp,* ]] && run "$store" "$all" "gp" 3
    [[ ",$PARTS," == *,slow,* ]] && run "$store" "$four" "smac-hpo,hebo,synetune-quantile,synetune-boundingbox" 3
    report=(metabo report --store "$store" --budgets "${REPORT_BUDGETS:-5,10,25,50}" --out "$OUT/report-$scenario")
    "${report[@]}" --baseline gp || "${report[@]}"  # paired differences from GP once GP has runs
done
