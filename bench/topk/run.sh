#!/usr/bin/env bash
# bench/topk/run.sh — the workers' top-K kernel against FAISS IndexFlatIP, in one run, on the
# same keys and queries; prints queries/s side by side with the ratio, this machine's measured
# bound, and whether the two answers agree.
#
#   bench/topk/run.sh [BUILD_DIR]        (default build/; needs `cmake --build` done)
#   env: N (1000000), D (256), K (100), Q1 (32 queries at batch 1), Q64 (256 at batch 64),
#        REPEAT (5 timed passes each; best and median are printed), SEED (1)
#
# The data file (Gaussian directions, L2-normalised) is made once per (N, D, SEED) under /tmp
# and read by both programs. FAISS runs in two thread set-ups — OpenMP 2 threads with
# single-threaded OpenBLAS, and the library defaults — and the better one is compared; reveal
# runs with 2 OpenMP threads and single-threaded OpenBLAS. The bounds are measured in the same
# run: a streaming read of the key matrix (batch 1 is bandwidth bound) and sgemm alone on the
# kernel's own blocks (batch 64 is compute bound).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
bin=$build/bench/topk/bench_topk
py=/usr/bin/python3 # Debian's interpreter: it has faiss and numpy
N=${N:-1000000} D=${D:-256} K=${K:-100} Q1=${Q1:-32} Q64=${Q64:-256} REPEAT=${REPEAT:-5}
SEED=${SEED:-1}
threads=2
[[ -x $bin ]] || { echo "run.sh: $bin missing: build first (cmake --build $build)" >&2; exit 2; }
$py -c 'import faiss' 2>/dev/null || { echo "run.sh: $py has no faiss (apt-get install python3-faiss)" >&2; exit 2; }

data=/tmp/reveal_topk_${N}x${D}_s${SEED}.bin
res=/tmp/reveal_topk_res
mkdir -p "$res"
if [[ ! -f $data ]]; then
  echo "== generating $data"
  "$bin" gen --out "$data" --n "$N" --d "$D" --queries "$Q64" --seed "$SEED"
fi

# value KEY LINE: the value of key=value in a bench output line
value() { grep -o "\b$1=[^ ]*" <<<"$2" | head -1 | cut -d= -f2; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== load before: $(uptime)"
echo "== bounds (OMP_NUM_THREADS=$threads)"
bounds=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads "$bin" bounds --data "$data" --batch 64 \
  --repeat "$REPEAT")
echo "$bounds"
gbs=$(value stream_read_gbs_best "$bounds")
gflops=$(grep -o 'sgemm_gflops_best=[^ ]*' <<<"$bounds" | cut -d= -f2 | sort -g | tail -1)

declare -A qps qps_med cfg cmp
for B in 1 64; do
  Q=$([[ $B == 1 ]] && echo "$Q1" || echo "$Q64")
  echo "== batch $B: reveal (OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads)"
  out=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads "$bin" search --data "$data" --batch "$B" \
    --queries "$Q" --k "$K" --repeat "$REPEAT" --out "$res/reveal_b$B.res")
  echo "$out"
  qps[reveal$B]=$(value qps_best "$out")
  qps_med[reveal$B]=$(value qps_median "$out")
  if [[ $B == 1 ]]; then
    echo "== batch 1: reveal with bf16 keys and the exact float re-rank"
    out=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads "$bin" search --data "$data" --batch 1 \
      --queries "$Q" --k "$K" --repeat "$REPEAT" --bf16 1 --out "$res/reveal_b1bf16.res")
    echo "$out"
    qps[reveal1bf16]=$(value qps_best "$out")
    qps_med[reveal1bf16]=$(value qps_median "$out")
  fi
  qps[faiss$B]=0
  for setup in "omp$threads-blas1" default; do
    echo "== batch $B: faiss ($setup)"
    if [[ $setup == default ]]; then
      out=$(env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS $py "$here/faiss_topk.py" --data "$data" \
        --batch "$B" --queries "$Q" --k "$K" --repeat "$REPEAT" --out "$res/faiss_b$B.$setup.res")
    else
      out=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads $py "$here/faiss_topk.py" --data "$data" \
        --batch "$B" --queries "$Q" --k "$K" --repeat "$REPEAT" --out "$res/faiss_b$B.$setup.res")
    fi
    echo "$out"
    if awk -v a="$(value qps_best "$out")" -v b="${qps[faiss$B]}" 'BEGIN { exit !(a > b) }'; then
      qps[faiss$B]=$(value qps_best "$out")
      qps_med[faiss$B]=$(value qps_median "$out")
      cfg[$B]=$setup
    fi
  done
  cmp[$B]=$("$bin" compare --a "$res/reveal_b$B.res" --b "$res/faiss_b$B.${cfg[$B]}.res")
  echo "${cmp[$B]}"
done
qps[faiss1bf16]=${qps[faiss1]} qps_med[faiss1bf16]=${qps_med[faiss1]} cfg[1bf16]=${cfg[1]}
cmp[1bf16]=$("$bin" compare --a "$res/reveal_b1bf16.res" --b "$res/faiss_b1.${cfg[1]}.res")
echo "bf16 vs faiss: ${cmp[1bf16]}"
bf16_vs_f32=$("$bin" compare --a "$res/reveal_b1bf16.res" --b "$res/reveal_b1.res" --tol 0)
echo "bf16 vs float keys: $bf16_vs_f32"
echo "== load after: $(uptime)"

echo
echo "N=$N d=$D K=$K, reveal: $threads OpenMP threads; FAISS $($py -c 'import faiss; print(faiss.__version__)') at its best set-up"
echo "bounds: stream read $gbs GB/s -> batch 1 ≤ $(awk -v g="$gbs" -v n="$N" -v d="$D" 'BEGIN { printf "%.1f", g * 1e9 / (n * d * 4) }') q/s" \
  "(bf16 keys: half the bytes);" \
  "sgemm $gflops GFLOP/s -> batch 64 ≤ $(awk -v g="$gflops" -v n="$N" -v d="$D" 'BEGIN { printf "%.1f", g * 1e9 / (2 * n * d) }') q/s"
printf '%-7s %-20s %-32s %-7s %-9s %-9s %s\n' batch "reveal q/s (median)" "faiss q/s (median, set-up)" ratio "bound" "of bound" "identical (ids; scores within 1e-5)"
for B in 1 1bf16 64; do
  if [[ $B != 64 ]]; then
    bytes=$([[ $B == 1 ]] && echo 4 || echo 2) # bf16 keys: 2 bytes scanned per element
    bound=$(awk -v g="$gbs" -v n="$N" -v d="$D" -v e="$bytes" 'BEGIN { printf "%.1f", g * 1e9 / (n * d * e) }')
  else
    bound=$(awk -v g="$gflops" -v n="$N" -v d="$D" 'BEGIN { printf "%.1f", g * 1e9 / (2 * n * d) }')
  fi
  printf '%-7s %-20s %-32s %-7s %-9s %-9s %s\n' "$B" "${qps[reveal$B]} (${qps_med[reveal$B]})" \
    "${qps[faiss$B]} (${qps_med[faiss$B]}, ${cfg[$B]})" \
    "$(awk -v a="${qps[reveal$B]}" -v b="${qps[faiss$B]}" 'BEGIN { printf "%.2fx", a / b }')" \
    "$bound" "$(awk -v a="${qps[reveal$B]}" -v b="$bound" 'BEGIN { printf "%.0f%%", 100 * a / b }')" \
    "$(value identical "${cmp[$B]}") ($(value same_ids "${cmp[$B]}")/$(value positions "${cmp[$B]}") same, max diff $(value max_score_diff "${cmp[$B]}"))"
done
