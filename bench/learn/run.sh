#!/usr/bin/env bash
# bench/learn/run.sh — the longer learning runs of docs/learning.md: the full recipe; retrieval
# learned from the real top-K with the contrastive loss off over three seeds; the ablations at
# the same budget and seed (full, ω ≡ 1, no re-encoding, uniform gate, memory off); the
# mechanism runs (retrieval learned through the fusion weights alone) over seeds.
# Each run prints its curves and a final line; logs go to $OUT (default build/bench-learn).
#   bench/learn/run.sh [full|small|mechanism|pooled-topk] [steps]
#     full:  the default world (64 entities × 6 relations, B = 32), default 3000 updates
#     small: learn_memory's world and budget (24 × 4, B = 16, warm start 150, edits every 50,
#            seed 7), default 500 updates
#     mechanism: coord_config_mechanism (learn_mechanism's recipe), seeds 1–6 with the fusion
#            weights and seeds 1–4 with ω ≡ 1, default 1000 updates
#     pooled-topk: the real top-K without the contrastive loss, pooled readout, curriculum warm
#            start, seeds 1–3 and seed 1 with ω ≡ 1, default 1500 updates
# One core per run; runs go one after another (set JOBS=2 to run two at a time).
set -euo pipefail
cd "$(dirname "$0")/../.."
size=${1:-full}
case "$size" in
  full) steps=${2:-3000}; base=(seed=1) ;;
  small) steps=${2:-500}
    base=(entities=24 relations=4 unasked=1 batch=16 warm_steps=150 edit_every=50 seed=7) ;;
  mechanism) steps=${2:-1000}; base=(mechanism=1 warm_steps="$steps") ;;
  pooled-topk) steps=${2:-1500}
    base=(entities=24 relations=4 unasked=1 batch=16 edit_every=50 con=0 head_pool=1
          tau_scale=10 warm_others=3 warm_ramp=150 warm_steps=450) ;;
  *) echo "usage: $0 [full|small|mechanism|pooled-topk] [steps]" >&2; exit 2 ;;
esac
specs=("full" "omega-off omega_off=1" "no-reencode reencode=0" \
       "uniform-gate uniform_gate=1" "memory-off memory_off=1" \
       "no-contrastive-seed1 con=0 seed=1 model_seed=1" \
       "no-contrastive-seed2 con=0 seed=2 model_seed=2" \
       "no-contrastive-seed3 con=0 seed=3 model_seed=3")
case "$size" in
  mechanism) specs=()
    for s in 1 2 3 4 5 6; do specs+=("seed$s seed=$s model_seed=$s"); done
    for s in 1 2 3 4; do specs+=("omega-off-seed$s seed=$s model_seed=$s omega_off=1"); done ;;
  pooled-topk) specs=()
    for s in 1 2 3; do specs+=("seed$s seed=$s model_seed=$s"); done
    specs+=("omega-off-seed1 seed=1 model_seed=1 omega_off=1") ;;
esac
bin=build/bench/learn/bench_learn
out=${OUT:-build/bench-learn}/$size
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run() { # name, then key=value overrides
  local name=$1; shift
  echo "== $name: start $(uptime | sed 's/.*load/load/')"
  "$bin" "${base[@]}" steps="$steps" log_every=50 "$@" > "$out/$name.log" 2>&1
  echo "== $name: $(grep -E '^(final|edit)' "$out/$name.log" | tr '\n' ' ')"
}
jobs_max=${JOBS:-1}
for spec in "${specs[@]}"; do
  # shellcheck disable=SC2086
  run $spec &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
done
wait
