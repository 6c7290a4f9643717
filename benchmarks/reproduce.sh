#!/usr/bin/env bash
# Reproduce BENCHMARKS.md from scratch on a fresh clone (after `pip install -e '.[bench]'`).
#
# Stages (each resumable: rerunning skips finished runs):
#   1. BBOB zero-shot, the core bar: 24 functions x d2,d5 x 5 seeds x budget 50; metabo, tpe, random, gp, and
#      the ablation metabo-refine10.
#   2. Problem families: every peer on YAHPO, scikit-learn and HiGHS problems (benchmarks/families.sh), and the
#      transfer baselines (Syne Tune, warm start) on YAHPO instances with related studies (benchmarks/transfer.sh).
#   2b. Meta-learning on YAHPO validation instances (benchmarks/meta.sh), the learned acquisition (NAP) against
#      EI (benchmarks/meta_nap.sh), a breadth check over 11 validation instances (benchmarks/meta_breadth.sh), and
#      the rbv2_rpart and iaml_glmnet bars (benchmarks/meta_other.sh).
#   2c. The ablation of metabo's defaults: min_distance, compress_worse and clip_worse against metabo-repeats,
#      metabo-nocompress and metabo-noclip (benchmarks/ablation_min_distance.sh).
#   2d. The meta-learning stage over the validation instances of three scenarios, with NAP against EI and the
#      transfer levers under test (benchmarks/meta_stage.sh, summarised by benchmarks/meta_stage_summary.py).
#   3. Suggestion speed against n (benchmarks/speed.py; run it on an otherwise idle machine).
#   4. Compute-to-quality curve, if the pretraining run folder with its snapshots exists (RUN=runs/...).
#   5. Compose BENCHMARKS.md with `metabo report --compose`.
# Time on this 2-core machine: PART=field from a fresh clone took 62 minutes, pip install and building the peers'
# environments included (the steps of benchmarks/time_from_scratch.sh, 2026-11-24). The meta-learning stages (every
# peer at 10 seeds; HEBO, GP and SMAC's BlackBox facade dominate) have not been timed end to end;
# `python benchmarks/stage_times.py` estimates each stage from the run times in its store (it overstated the timed
# field stages 1.4 to 2.3 times).
# QUICK=1 runs every stage at smoke-test size into bench_results/quick/ and writes bench_results/quick/BENCHMARKS.md
# (minutes; it checks the pipeline, its numbers mean nothing). COMPOSE_ONLY=1 skips every stage and only recomposes
# BENCHMARKS.md from the stores already there. PART=field runs and composes only the comparison with the field
# (stages 1, 2, 3 and 4: issue 3's size) into bench_results/BENCHMARKS.field.md, PART=meta only the meta-learning
# stages (2b, 2c) and their sections into bench_results/BENCHMARKS.meta.md; the default PART=all does both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORKERS=${WORKERS:-2}
RUN=${RUN:-runs/tnp-d128-l4-s0}
QUICK=${QUICK:-0}
NOAUX=${NOAUX:-runs/nap/lcbench-aux0.safetensors}  # NAP trained without the auxiliary loss (meta_nap.sh makes it)
COMPOSE_ONLY=${COMPOSE_ONLY:-0}
PART=${PART:-all}
case "$PART" in all|field|meta) ;; *) echo "PART must be all, field or meta, not '$PART'" >&2; exit 2 ;; esac
FIELD=$([ "$PART" != meta ] && echo 1 || echo 0)
META=$([ "$PART" != field ] && echo 1 || echo 0)
stage() {  # run a stage command unless only composing
    [ "$COMPOSE_ONLY" = 1 ] || env "$@"
}
field_stage() { [ "$FIELD" = 0 ] || stage "$@"; }
meta_stage() { [ "$META" = 0 ] || stage "$@"; }

ablations=()  # the full profile adds the acquisition ablation (it has no smoke-test size)
studies=()  # and the constrained, multi-objective and pruned studies (issue 17, 18), with their fragments
study_fragments=()
if [ "$QUICK" = 1 ]; then
    R=bench_results/quick
    OUT=$R/BENCHMARKS.md
    field_stage python benchmarks/bbob_zero_shot.py --functions 1,8 --dims 2 --seeds 1 --budget 10 \
        --optimizers metabo,tpe,random,gp,metabo-refine10 --out $R/bbob --workers "$WORKERS" --no-progress
    field_stage STORE=$R/families/results.db SEEDS=1 REF_EVALS=20 REPORT_BUDGETS=4,8 WORKERS=$WORKERS bash benchmarks/families.sh --budget 8
    field_stage STORE=$R/transfer/results.db REPORT_BUDGETS=4,8 WORKERS=$WORKERS bash benchmarks/transfer.sh --seeds 1 --budget 8
    meta_stage STORE=$R/meta/results.db SEEDS=1 SEEDS_SLOW=1 BUDGET=8 REPORT_BUDGETS=4,8 WORKERS=$WORKERS bash benchmarks/meta.sh
    NOAUX=$R/nap/noaux.safetensors
    meta_stage STORE=$R/meta/results.db SEEDS=1 BUDGET=8 NOAUX=$NOAUX NAP_MINUTES=0.5 WORKERS=$WORKERS bash benchmarks/meta_nap.sh
    meta_stage STORE=$R/meta_breadth/results.db SEEDS=1 BUDGET=5 PROBLEMS=yahpo/lcbench/167152 REPORT_BUDGETS=1,5 \
        WORKERS=$WORKERS bash benchmarks/meta_breadth.sh
    meta_stage STORE=$R/meta_other/results.db SEEDS=1 BUDGET=8 REPORT_BUDGETS=4,8 WORKERS=$WORKERS bash benchmarks/meta_other.sh
    field_stage STORE_DIR=$R/conditional SEEDS=1 BUDGET=8 REPORT_BUDGETS=4,8 PARTS=categorical \
        OPTIMIZERS=metabo,tpe-group,random WORKERS=$WORKERS bash benchmarks/conditional.sh
    field_stage STORE=$R/wide/results.db SEEDS=1 BUDGET=8 REPORT_BUDGETS=4,8 FUNCTIONS=01 DIMS=20 \
        OPTIMIZERS=metabo,metabo-subspace,random BASELINE=metabo-subspace WORKERS=$WORKERS bash benchmarks/wide.sh
    CONDITIONAL=metabo,tpe-group,random
    CONDITIONAL_BUDGETS=4,8
    WIDE=metabo,metabo-subspace,random
    WIDE_BUDGETS=4,8
    WIDE_BASELINE=metabo-subspace
    META_BUDGETS=4,8
    BREADTH_BUDGETS=1,5
    OTHER_BUDGETS=4,8
    field_stage python benchmarks/speed.py --threads 1,2 --problems hartmann6,sumsq --n 10,50 --repeats 2 --out $R/speed
    field_stage python benchmarks/speed.py --threads 1,2 --problems hartmann6,sumsq --n 50 --repeats 2 \
        --out $R/speed_ratio
    field_stage python benchmarks/speed.py --threads 1,2 --problems hartmann6,sumsq --n 50 --repeats 2 \
        --tell fail --out $R/speed_ratio_fail
    SPEED=$R/speed/speed.md
    CURVE=$R/compute_curve
    CURVE_ARGS=(--functions 1 --dims 2 --seeds 1 --budget 10 --steps 9000 --peer-store $R/bbob/results.db --out $CURVE)
else
    R=bench_results
    OUT=BENCHMARKS.md
    field_stage python benchmarks/bbob_zero_shot.py --optimizers metabo,tpe,random,gp,metabo-refine10 --workers "$WORKERS" \
        --no-progress
    field_stage WORKERS=$WORKERS bash benchmarks/families.sh
    field_stage WORKERS=$WORKERS bash benchmarks/transfer.sh
    meta_stage WORKERS=$WORKERS bash benchmarks/meta.sh
    meta_stage NOAUX=$NOAUX WORKERS=$WORKERS bash benchmarks/meta_nap.sh
    meta_stage WORKERS=$WORKERS bash benchmarks/meta_breadth.sh
    meta_stage WORKERS=$WORKERS bash benchmarks/meta_other.sh
    meta_stage WORKERS=$WORKERS bash benchmarks/ablation_min_distance.sh
    meta_stage WORKERS=$WORKERS METABO=metabo-transfer,metabo,metabo-nap,metabo-nap-ei \
        bash benchmarks/meta_stage.sh
    meta_stage python benchmarks/meta_stage_summary.py --out $R/meta_stage/summary.md
    meta_stage WORKERS=$WORKERS bash benchmarks/traces.sh
    meta_stage python benchmarks/speed_transfer.py --cpu-time --repeats 15
    field_stage STORE=$R/constrained_mo/results.db WORKERS=$WORKERS bash benchmarks/constrained_mo.sh
    field_stage STORE=$R/pruning/results.db WORKERS=$WORKERS bash benchmarks/pruning.sh
    field_stage WORKERS=$WORKERS bash benchmarks/conditional.sh
    field_stage STORE=$R/wide/results.db WORKERS=$WORKERS bash benchmarks/wide.sh
    field_stage python benchmarks/speed.py --threads 1 --problems sumsq,hartmann6 --dims 64 --n 50,100 \
        --out $R/speed_d64
    CONDITIONAL=metabo,tpe-group,tpe,gp,smac-hpo,random
    CONDITIONAL_BUDGETS=10,25,50
    WIDE=metabo,metabo-subspace,gp,tpe,cmaes,random
    WIDE_BUDGETS=25,50,100
    WIDE_BASELINE=gp
    field_stage python benchmarks/speed_outputs.py --suggestions 15 --out $R/speed_outputs/speed.md
    field_stage python benchmarks/bad_inputs.py
    field_stage python benchmarks/reliability.py
    studies=(--section "Constraints and several objectives: metabo against Optuna's samplers=$R/constrained_mo/results.db::metabo,gp,tpe,random,nsgaii::10,25,50::metabo"
             --section "Pruning: lcbench learning curves under Optuna's pruners=$R/pruning/results.db::metabo,tpe,random::25,50::tpe")
    study_fragments=(--fragment "Suggestion speed with several objectives and a constraint=$R/speed_outputs/speed.md"
                     --fragment "Optuna's sampler conformance tests=benchmarks/fragments/optuna_conformance.md"
                     --fragment "Bad input=benchmarks/fragments/bad_inputs.md"
                     --fragment "Reliability under load and faults=benchmarks/fragments/reliability.md")
    ablations=(--section "Ablation: metabo's defaults against metabo-repeats, metabo-nocompress and metabo-noclip=$R/ablation_min_distance/results.db::::10,25,50::metabo")
    META_BUDGETS=5,10,20,25,50
    BREADTH_BUDGETS=1,5,10,20
    OTHER_BUDGETS=5,10,25,50
    field_stage python benchmarks/speed.py --threads 1,2 --problems hartmann6,sumsq
    field_stage python benchmarks/speed.py --threads 1,2 --problems hartmann6,sumsq --n 200 --repeats 15 \
        --out $R/speed_ratio
    field_stage python benchmarks/speed.py --threads 1,2 --problems hartmann6,sumsq --n 200 --repeats 15 \
        --tell fail --out $R/speed_ratio_fail
    SPEED=$R/speed/speed.md
    CURVE=$R/compute_curve
    CURVE_ARGS=(--out $CURVE)
fi
META_ALL=metabo-transfer,metabo-related,metabo,warmstart-tpe,synetune-zeroshot,synetune-quantile,synetune-boundingbox
META_ALL=$META_ALL,random,tpe,cmaes,botorch,smac-hpo,gp,smac-bb,hebo
OTHER_PEERS=random,tpe,cmaes,smac-hpo,gp,botorch,smac-bb,hebo
META_NAP=metabo-nap,metabo-nap-ei,metabo-nap:$NOAUX,metabo-transfer
sections=()
fragments=()
if [ "$FIELD" = 1 ]; then
    sections+=(
        --section "BBOB zero-shot: metabo against TPE, random search and Optuna's GP=$R/bbob/results.db::metabo,tpe,random,gp"
        --section "Ablation: 2 (default) against 10 gradient refinement steps=$R/bbob/results.db::metabo,metabo-refine10,gp"
        --section "Problem families, every peer=$R/families/results.db"
        --section "Transfer baselines on YAHPO (metabo still zero-shot)=$R/transfer/results.db")
    fragments+=(--fragment "Suggestion speed=$SPEED"
               --fragment "Suggestion speed against GP at 200 trials=$R/speed_ratio/speed.md"
               --fragment "Suggestion speed against GP at 200 trials, asks failed=$R/speed_ratio_fail/speed.md")
    if [ -d "$RUN/snapshots" ]; then
        field_stage python benchmarks/compute_curve.py --run "$RUN" --workers "$WORKERS" --no-progress "${CURVE_ARGS[@]}"
        fragments+=(--fragment "Compute to quality=$CURVE/compute_curve.md")
    fi
fi
if [ "$META" = 1 ]; then
    sections+=(
        "${ablations[@]}"
        --section "Meta-learning on YAHPO validation instances, every peer=$R/meta/results.db::$META_ALL::$META_BUDGETS"
        --section "Learned acquisition (NAP) against EI on lcbench=$R/meta/results.db::$META_NAP::$META_BUDGETS"
        --section "Meta-learning breadth: 11 validation instances, 5 seeds=$R/meta_breadth/results.db::::$BREADTH_BUDGETS"
        --section "iaml_glmnet (4 validation instances), metabo zero-shot=$R/meta_other/results.db::metabo,metabo-nocompress,metabo-noclip,$OTHER_PEERS::$OTHER_BUDGETS"
        --section "rbv2_rpart with its own train split=$R/meta_other/results.db::metabo-transfer,metabo,warmstart-tpe,synetune-zeroshot,$OTHER_PEERS::$OTHER_BUDGETS")
fi
[ "$FIELD" = 1 ] && sections+=("${studies[@]}") && fragments+=("${study_fragments[@]}")
declare -A CONDITIONAL_TITLES=([cash]="CASH" [xgboost]="rbv2_xgboost with its booster conditions"
                               [categorical]="a 50-choice categorical")
[ "$FIELD" = 1 ] && for part in cash xgboost categorical; do
    [ -f "$R/conditional/$part.db" ] && sections+=(--section "Conditional and many-valued parameters: \
${CONDITIONAL_TITLES[$part]}=$R/conditional/$part.db::$CONDITIONAL::$CONDITIONAL_BUDGETS::metabo")
done
[ "$FIELD" = 1 ] && [ -f "$R/wide/results.db" ] && \
    sections+=(--section "Wide spaces: BBOB in 20 and 40 dimensions=$R/wide/results.db::$WIDE::$WIDE_BUDGETS::$WIDE_BASELINE")
[ "$FIELD" = 1 ] && [ -f "$R/speed_d64/speed.md" ] && \
    fragments+=(--fragment "Suggestion speed in 64 dimensions=$R/speed_d64/speed.md")
[ "$META" = 1 ] && [ -f "$R/meta_stage/summary.md" ] && \
    fragments+=(--fragment "Meta-learning stage: validation instances of lcbench, rbv2_xgboost and rbv2_rpart=$R/meta_stage/summary.md")
[ "$META" = 1 ] && [ -f "$R/meta_traces/summary.md" ] && \
    fragments+=(--fragment "Meta-learning stage with optimisation traces as past studies=$R/meta_traces/summary.md")
[ "$META" = 1 ] && [ -f "$R/speed_transfer/speed_transfer.md" ] && \
    fragments+=(--fragment "Suggestion speed with related studies=$R/speed_transfer/speed_transfer.md")
fragments+=(--fragment "End-to-end example: past studies in SQLite=benchmarks/fragments/end_to_end.md"
           --fragment "What was tried=benchmarks/fragments/what_was_tried.md")
[ "$PART" = all ] || OUT=$R/BENCHMARKS.$PART.md  # a part never overwrites the whole file
metabo report --compose "$OUT" --intro @benchmarks/intro.md "${sections[@]}" "${fragments[@]}"
