#!/usr/bin/env bash
# The demo (README): set-up on a fresh Debian 12 machine, then the main job — real knowledge
# from Debian and npm packages (country flags and world facts) into four knowledge stores,
# `mpirun -np 5` training (rank 0 + one worker per store: warm start, memory training with
# counterfactual edit rounds), a refresh of the stores with the trained encoder, the evaluation
# table on the held-out Twemoji flags with memory and with memory removed, the pixel
# nearest-neighbour baseline beside it, and one answer with the knowledge it was read from.
#   scripts/demo.sh [--quick]      --quick: every 8th country and a short training (tests)
# REVEAL_BIN=path skips the set-up and uses that binary (the test of --quick does).
# DEMO_STEPS=N trains N updates instead of 8000 (23 min from data to answer on 2 cores; 6000:
# 18 min, docs/results.md); DEMO_OUT and DEMO_DATA name the run and data directories.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/flags/job.sh
quick=()
steps=${DEMO_STEPS:-8000} rounds=16
if [[ "${1:-}" == "--quick" ]]; then
  quick=(--quick)
  steps=${DEMO_STEPS:-400} rounds=4
fi
warm=$((steps / 2)) # the first half warm start, the second memory training
out=${DEMO_OUT:-runs/demo}
data=${DEMO_DATA:-data/flags}
rm -rf "$out/stores" "$out/rounds" "$out/run"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
t_start=$(date +%s)

if [[ -z "${REVEAL_BIN:-}" ]]; then
  echo "== set-up: packages and build"
  scripts/bootstrap.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null
fi
reveal=${REVEAL_BIN:-build/cli/reveal}

echo "== data: country flags and world facts (tools/flags/build.sh, docs/data.md)"
tools/flags/build.sh --out "$data" "${quick[@]}"

echo "== ingest: four knowledge sources into four stores"
for src in image_text:image-text kg:kg text:text qa:qa; do
  file=${src%%:*} type=${src##*:}
  $reveal ingest --type "$type" --input "$data/$file.jsonl" --store "$out/stores/flags-$file" \
    --name "flags-$file" --quiet
done
echo "== the same again: idempotent (nothing added)"
$reveal ingest --type kg --input "$data/kg.jsonl" --store "$out/stores/flags-kg" --quiet

echo "== stores"
printf '%-20s %10s %12s\n' store items "disk MiB"
for d in "$out"/stores/*; do
  $reveal stats --store "$d" | awk -v s="$(basename "$d")" \
    '/^items/ {n=$2} /^disk/ {b=$2} END {printf "%-20s %10d %12.1f\n", s, n, b/1048576}'
done

echo "== one item, by its logical key"
$reveal inspect --store "$out/stores/flags-kg" --key "$(head -1 "$data/kg.jsonl" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"

echo "== counterfactual edit rounds for training (tools/flags/counterfactual.py)"
flags_edit_rounds "$data" "$out" "$rounds" 1
flags_job_files "$out" "$out/stores" "$data" "$steps" "$warm"

echo "== training: mpirun -np 5 (rank 0 + one worker per store), $steps updates (docs/train.md)"
mpirun --oversubscribe -np 5 "$reveal" train --config "$out/train.json" --run-dir "$out/run" \
  --resume never 2>&1 | grep --line-buffered -E "^\[rank 0\].*(step [0-9]+\/|training:|checkpoint)"
ck=$(ls -d "$out"/run/checkpoints/step-* | tail -1)

echo "== the stores re-encoded with the trained encoder (reveal refresh)"
mpirun --oversubscribe -np 5 "$reveal" refresh --checkpoint "$ck" 2>&1 | grep "^refresh"

echo "== evaluation: Twemoji flags (never in training or memory), facts never asked in training"
mpirun --oversubscribe -np 5 "$reveal" eval --checkpoint "$ck" --data "$data/vqa_dev.jsonl" \
  --json "$out/eval_dev.json" 2>/dev/null

echo "== baseline: pixel nearest neighbour recognises the country, then looks the fact up"
/usr/bin/python3 tools/flags/nn_baseline.py --data "$data" | tail -14

echo "== one answer, with the knowledge it was read from"
iso=$(head -1 "$data/vqa_dev.jsonl" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["image"])')
"$reveal" answer --checkpoint "$ck" --image "$data/$iso" \
  --question "What is the capital of the country whose flag this is?" --show 6 2>/dev/null
echo "== done in $(( $(date +%s) - t_start )) s"
