#!/usr/bin/env bash
# bench/train_step/run.sh — one training step of the reference encoder-decoder transformer in
# this engine and in PyTorch CPU, in one run, on the same weights and tokens; prints both step
# times side by side with their ratio, the achieved GFLOP/s of matmul work, and the OpenBLAS
# sgemm rate on the step's own shapes measured in the same run.
#
#   bench/train_step/run.sh [BUILD_DIR]     (default build/; needs `cmake --build` done)
#   env: ROUNDS (3) timed rounds, each C then PyTorch; STEPS (10) timed steps per program and
#        round after WARMUP (3); SEARCH_STEPS (3) steps of each configuration tried first;
#        DUMP (/tmp/reveal_train_step.bin)
#
# 1. bench_train_step --dump writes the initial weights, tokens, loss, gradients and updated
#    weights of one step; torch_step.py check replays that step in PyTorch float64 and float32
#    and prints the differences (the run stops if the C step is off).
# 2. Each side's thread set-ups are tried briefly and its fastest is kept: the engine with
#    OPENBLAS_NUM_THREADS 1 or 2 (2 = a team of 2 OpenMP threads, training/threads.h), the
#    latter also with OMP_WAIT_POLICY=passive (waiting threads sleep instead of spinning: slower
#    on idle cores, far faster when other jobs share them); PyTorch with 1 or 2 intra-op
#    threads × OPENBLAS_NUM_THREADS 1 or 2, eager or torch.jit.trace.
# 3. ROUNDS rounds alternate the two programs, so a change of the machine's load hits both;
#    the ratio is taken per round and its median reported, with the load beside each round.
#    Wall time is the figure; process CPU time is printed beside it because on a loaded machine
#    a single-threaded run's CPU time stays close to its time alone while its wall time does not
#    (with 2 threads, CPU time also counts the threads' spin-waiting).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
bin=$build/bench/train_step/bench_train_step
py=/usr/bin/python3 # Debian's interpreter: it has torch and numpy
ROUNDS=${ROUNDS:-3} STEPS=${STEPS:-10} WARMUP=${WARMUP:-3} SEARCH_STEPS=${SEARCH_STEPS:-3}
DUMP=${DUMP:-/tmp/reveal_train_step.bin}
[[ -x $bin ]] || { echo "run.sh: $bin missing: build first (cmake --build $build)" >&2; exit 2; }
$py -c 'import torch' 2>/dev/null || { echo "run.sh: $py has no torch (apt-get install python3-torch)" >&2; exit 2; }

# value KEY TEXT: the value of key=value on the RESULT line of a program's output
value() { grep '^RESULT' <<<"$2" | grep -o "\b$1=[^ ]*" | head -1 | cut -d= -f2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# c_run OPENBLAS_THREADS STEPS WARMUP SGEMM_REPS [OMP_WAIT_POLICY]
c_run() {
  env OPENBLAS_NUM_THREADS="$1" OMP_NUM_THREADS="$1" ${5:+OMP_WAIT_POLICY=$5} \
    "$bin" --steps "$2" --warmup "$3" --sgemm-reps "$4"
}
# torch_run TORCH_THREADS OPENBLAS_THREADS JIT STEPS WARMUP
torch_run() {
  OPENBLAS_NUM_THREADS=$2 OMP_NUM_THREADS=$1 $py "$here/torch_step.py" "$DUMP" time \
    --threads "$1" $([[ $3 == 1 ]] && echo --jit) --steps "$4" --warmup "$5"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "torch $($py -c 'import torch; print(torch.__version__)'), load $(load)"
echo "== correctness: one step from identical weights"
"$bin" --dump "$DUMP"
OPENBLAS_NUM_THREADS=1 $py "$here/torch_step.py" "$DUMP" check

echo "== thread set-ups, $SEARCH_STEPS steps each after 1 warm-up (median ms)"
best_c= c_threads= c_wait=
for cfg in "1" "2" "2 passive"; do
  read -r t wait <<<"$cfg"
  ms=$(value c_step_ms "$(c_run "$t" "$SEARCH_STEPS" 1 0 "$wait")")
  echo "  engine  OPENBLAS_NUM_THREADS=$t${wait:+ OMP_WAIT_POLICY=$wait}: $ms ms (load $(load))"
  if [[ -z $best_c ]] || awk "BEGIN{exit !($ms < $best_c)}"; then
    best_c=$ms c_threads=$t c_wait=$wait
  fi
done
c_desc="engine OPENBLAS_NUM_THREADS=$c_threads${c_wait:+ OMP_WAIT_POLICY=$c_wait}"
best_t= t_cfg=
for cfg in "1 1 0" "2 1 0" "2 2 0" "1 2 0" "1 1 1" "2 1 1"; do
  read -r tt ob jit <<<"$cfg"
  ms=$(value torch_step_ms "$(torch_run $tt $ob $jit "$SEARCH_STEPS" 1)")
  echo "  PyTorch threads $tt, OPENBLAS_NUM_THREADS=$ob, jit $([[ $jit == 1 ]] && echo trace || echo off): $ms ms (load $(load))"
  if [[ -z $best_t ]] || awk "BEGIN{exit !($ms < $best_t)}"; then best_t=$ms t_cfg=$cfg; fi
done
read -r tt ob jit <<<"$t_cfg"
t_desc="PyTorch: $tt threads, OPENBLAS_NUM_THREADS=$ob, jit $([[ $jit == 1 ]] && echo trace || echo off)"
echo "== kept: $c_desc; $t_desc"

echo "== $ROUNDS rounds of $STEPS steps after $WARMUP warm-ups, engine then PyTorch"
c_all=() t_all=() c_cpu=() t_cpu=() ratios=() cpu_ratios=() c_out=
for r in $(seq 1 "$ROUNDS"); do
  reps=0
  [[ $r == "$ROUNDS" ]] && reps=5 # the sgemm reference once, in the last round
  c_out=$(c_run "$c_threads" "$STEPS" "$WARMUP" "$reps" "$c_wait")
  c_ms=$(value c_step_ms "$c_out") c_cms=$(value c_cpu_ms "$c_out")
  l1=$(load)
  t_out=$(torch_run $tt $ob $jit "$STEPS" "$WARMUP")
  t_ms=$(value torch_step_ms "$t_out") t_cms=$(value torch_cpu_ms "$t_out")
  ratio=$(awk "BEGIN{printf \"%.2f\", $t_ms / $c_ms}")
  cpu_ratio=$(awk "BEGIN{printf \"%.2f\", $t_cms / $c_cms}")
  printf '  round %d: engine %7.1f ms, cpu %7.1f (load %s)  PyTorch %7.1f ms, cpu %7.1f (load %s)  PyTorch / engine %s, by cpu %s\n' \
    "$r" "$c_ms" "$c_cms" "$l1" "$t_ms" "$t_cms" "$(load)" "$ratio" "$cpu_ratio"
  c_all+=("$c_ms") t_all+=("$t_ms") c_cpu+=("$c_cms") t_cpu+=("$t_cms") ratios+=("$ratio")
  cpu_ratios+=("$cpu_ratio")
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
c_med=$(med "${c_all[@]}") t_med=$(med "${t_all[@]}") r_med=$(med "${ratios[@]}")
c_cmed=$(med "${c_cpu[@]}") t_cmed=$(med "${t_cpu[@]}") rc_med=$(med "${cpu_ratios[@]}")
flops=$(value flops "$c_out")
gf() { awk "BEGIN{printf \"%.1f\", $flops / $1 / 1e6}"; }
echo "$c_out" | grep -E '^  sgemm|^sgemm alone|^c step at'
echo "== summary (load now $(load); figures under load are pessimistic for both sides)"
printf '  %-52s %14s %14s\n' "" "engine" "PyTorch"
printf '  %-52s %14.1f %14.1f\n' "step wall time, median of $ROUNDS round medians (ms)" "$c_med" "$t_med"
printf '  %-52s %14.1f %14.1f\n' "step CPU time, median of $ROUNDS round medians (ms)" "$c_cmed" "$t_cmed"
printf '  %-52s %14s %14s\n' "matmul GFLOP/s by wall time ($flops FLOPs a step)" "$(gf "$c_med")" "$(gf "$t_med")"
printf '  %-52s %14s %14s\n' "matmul GFLOP/s by CPU time" "$(gf "$c_cmed")" "$(gf "$t_cmed")"
printf '  %-52s %14s\n' "PyTorch / engine, median over rounds, wall" "$r_med"
printf '  %-52s %14s\n' "PyTorch / engine, median over rounds, CPU" "$rc_med"
printf '  %-52s %14s %14s\n' "sgemm on the step's shapes, GFLOP/s (wall, CPU)" \
  "$(value sgemm_shapes_gflops "$c_out")" "$(value sgemm_shapes_cpu_gflops "$c_out")"
printf '  %-52s %14s %14s\n' "sgemm, best of the step's shapes, GFLOP/s (wall, CPU)" \
  "$(value sgemm_best_gflops "$c_out")" "$(value sgemm_best_cpu_gflops "$c_out")"
echo "  $c_desc; $t_desc"
