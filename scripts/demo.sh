#!/usr/bin/env bash
# The demo (README): set-up on a fresh Debian 12 machine, then the main job as far as it exists
# today — real knowledge from Debian and npm packages into four knowledge stores, and the
# generated world into four more. Training and evaluation join as they land (see README).
#   scripts/demo.sh [--quick]      --quick: a subset of the countries
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
if [[ "${1:-}" == "--quick" ]]; then quick=(--quick); fi
out=runs/demo
rm -rf "$out/stores"
mkdir -p "$out"

echo "== set-up: packages and build"
scripts/bootstrap.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
reveal=build/cli/reveal

echo "== data: country flags and world facts (tools/flags/build.sh, docs/data.md)"
tools/flags/build.sh --out data/flags "${quick[@]}"

echo "== ingest: four knowledge sources into four stores"
for src in image_text:image-text kg:kg text:text qa:qa; do
  file=${src%%:*} type=${src##*:}
  $reveal ingest --type "$type" --input "data/flags/$file.jsonl" --store "$out/stores/flags-$file" \
    --name "flags-$file" --quiet
done
echo "== the same again: idempotent (nothing added)"
$reveal ingest --type kg --input data/flags/kg.jsonl --store "$out/stores/flags-kg" --quiet

echo "== stores"
printf '%-20s %10s %12s\n' store items "disk MiB"
for d in "$out"/stores/*; do
  $reveal stats --store "$d" | awk -v s="$(basename "$d")" \
    '/^items/ {n=$2} /^disk/ {b=$2} END {printf "%-20s %10d %12.1f\n", s, n, b/1048576}'
done

echo "== one item, by its logical key"
$reveal inspect --store "$out/stores/flags-kg" --key "$(head -1 data/flags/kg.jsonl |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
