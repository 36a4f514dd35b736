#!/usr/bin/env bash
# bench/learn/run.sh — the longer learning runs of docs/learning.md on the full-size world
# (64 entities, 6 relations): the full recipe; retrieval learned from the real top-K with the
# contrastive loss off over three seeds; the ablations at the same budget and seed.
# Each run prints its curves and a final line; logs go to $OUT (default build/bench-learn).
#   scripts: bench/learn/run.sh [steps]        (default 3000; one core per run, runs in turn)
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-3000}
bin=build/bench/learn/bench_learn
out=${OUT:-build/bench-learn}
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run() { # name, then key=value overrides
  local name=$1; shift
  echo "== $name ($(uptime | sed 's/.*load/load/'))"
  "$bin" steps="$steps" "$@" | tee "$out/$name.log" | grep -E '^(final|edit)'
}
run full seed=1
for s in 1 2 3; do run "no-contrastive-seed$s" seed=$s model_seed=$s con=0; done
run omega-off seed=1 omega_off=1
run no-reencode seed=1 reencode=0
run uniform-gate seed=1 uniform_gate=1
run memory-off seed=1 memory_off=1
