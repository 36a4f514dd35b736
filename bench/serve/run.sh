#!/usr/bin/env bash
# bench/serve/run.sh — round trip of a distributed top-K search against the same search
# in-process (bench_serve.c says what is timed). Prints the machine load beside the figures:
# the machine is shared and ranks are oversubscribed on 2 cores, so figures move with the load.
#
#   bench/serve/run.sh [BUILD_DIR]        (default build/; needs `cmake --build` done)
#   env: W (2 workers), N (20000 items per worker), DK (256), C (8), D (64): value c×d,
#        K (100), REPS (20)
# The stores are built once per (W, N, DK, C, D) under /tmp and reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
bin=$build/bench/serve/bench_serve
W=${W:-2} N=${N:-20000} DK=${DK:-256} C=${C:-8} D=${D:-64} K=${K:-100} REPS=${REPS:-20}
[[ -x $bin ]] || { echo "run.sh: $bin missing: build first (cmake --build $build)" >&2; exit 2; }
dir=/tmp/reveal_serve_w${W}_n${N}_dk${DK}_v${C}x${D}
if [[ ! -f $dir/layout.json ]]; then
  rm -rf "$dir"
  echo "building $W stores of $N items in $dir"
  "$bin" --build "$dir" "$W" "$N" "$DK" "$C" "$D"
fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
echo "load before: $(uptime)"
mpirun --oversubscribe -np $((W + 1)) "$bin" "$dir/layout.json" "$K" "$REPS" 2>&1 |
  grep -v '^\[rank'
echo "load after:  $(uptime)"
