#!/usr/bin/env bash
# Time benchmarks/reproduce.sh from scratch: a fresh clone of this repository's HEAD in a temporary folder, a fresh
# virtualenv (`pip install -e '.[bench]'`) and fresh peer environments (METABO_PEER_ENVS inside the clone), then
# `PART=$PART bash benchmarks/reproduce.sh` there. Prints the elapsed seconds of the install and of the whole.
#   PART=field bash benchmarks/time_from_scratch.sh        # the comparison with the field (issue 3's size)
# RUN points the compute-curve stage at a pretraining run folder (not in a clone; default: this checkout's).
# The clone stays in DEST (default /tmp/metabo-from-scratch) for comparing its stores with bench_results/.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PART=${PART:-field}
DEST=${DEST:-/tmp/metabo-from-scratch}
RUN=${RUN:-$REPO/runs/tnp-d128-l4-s0}
export METABO_YAHPO_DATA=${METABO_YAHPO_DATA:-$(cd "$REPO/.." && pwd)/shared/data/yahpo}
export METABO_PEER_ENVS=$DEST/.peer-envs
rm -rf "$DEST"
git clone -q "$REPO" "$DEST"
cd "$DEST"
start=$(date +%s)
echo "start $(date -u) at $(git rev-parse --short HEAD), PART=$PART"
python3 -m venv .venv
source .venv/bin/activate
pip install -q -e '.[bench]'
echo "installed after $(( $(date +%s) - start )) s"
PART=$PART WORKERS=${WORKERS:-2} RUN=$RUN bash benchmarks/reproduce.sh
echo "done after $(( $(date +%s) - start )) s, $(date -u)"
