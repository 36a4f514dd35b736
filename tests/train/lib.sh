# tests/train/lib.sh — what the train_ and mpi_train_ tests share: a small generated world
# ingested into four stores (and the kg source again as two shards), layouts, a tiny config,
# and helpers to run `reveal train` under mpirun and compare loss curves.
set -euo pipefail
: "${REVEAL_BIN:?REVEAL_BIN must name the reveal binary}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
MPIRUN=${MPIRUN:-mpirun}

# make_world DIR: world + stores + layouts + config in DIR (reused when DIR/ready exists).
make_world() {
    local d=$1
    [ "$(cat "$d/ready" 2>/dev/null)" = "$(md5sum <"${BASH_SOURCE[0]}")" ] && return 0
    rm -rf "$d"
    mkdir -p "$d"
    "$REVEAL_BIN" world --out "$d/world" --seed 5 --entities 12 --relations 3 --objects 20 \
        --unasked 1 >/dev/null
    local t
    for t in image_text:image-text kg:kg qa:qa text:text; do
        "$REVEAL_BIN" ingest --type "${t#*:}" --input "$d/world/${t%%:*}.jsonl" \
            --store "$d/stores/${t%%:*}" --image-size 16 >/dev/null
    done
    # two counterfactual edit rounds (every fact re-drawn), applied during training
    for t in 1 2; do
        "$REVEAL_BIN" world --out "$d/rounds/round-$t" --seed 5 --entities 12 --relations 3 \
            --objects 20 --unasked 1 --edit-fraction 1 --edit-seed "$t" >/dev/null
    done
    # the kg source again, split in two shards by line parity
    awk 'NR % 2 == 1' "$d/world/kg.jsonl" >"$d/world/kg_a.jsonl"
    awk 'NR % 2 == 0' "$d/world/kg.jsonl" >"$d/world/kg_b.jsonl"
    "$REVEAL_BIN" ingest --type kg --input "$d/world/kg_a.jsonl" --store "$d/stores/kg_a" \
        --image-size 16 >/dev/null
    "$REVEAL_BIN" ingest --type kg --input "$d/world/kg_b.jsonl" --store "$d/stores/kg_b" \
        --image-size 16 >/dev/null
    cat >"$d/whole.json" <<J
{"sources": [{"name": "image_text", "type": "image-text", "stores": ["$d/stores/image_text"]},
             {"name": "kg", "type": "kg", "stores": ["$d/stores/kg"]},
             {"name": "qa", "type": "qa", "stores": ["$d/stores/qa"]}]}
J
    cat >"$d/sharded.json" <<J
{"sources": [{"name": "image_text", "type": "image-text", "stores": ["$d/stores/image_text"]},
             {"name": "kg", "type": "kg", "stores": ["$d/stores/kg_a", "$d/stores/kg_b"]},
             {"name": "qa", "type": "qa", "stores": ["$d/stores/qa"]}]}
J
    cat >"$d/tiny.json" <<J
{"data": {"layout": "$d/whole.json", "train": "$d/world/questions_train.jsonl",
          "dev": "$d/world/questions_test.jsonl"},
 "tokenizer": {"vocab": 400},
 "model": {"width": 32, "heads": 2, "mlp_hidden": 64, "image_size": 16, "patch": 4,
           "text_max": 16, "answer_max": 4, "latents": 2, "key_dim": 32},
 "train": {"batch": 8, "steps": 24, "warm_steps": 8, "warm_others": 2, "topk": 3, "rho": 0.34,
           "inject": 0.5, "refresh_every": 10, "log_every": 4, "checksum_every": 5, "warmup": 4,
           "timeout_s": 60, "edits": "$d/rounds", "edit_every": 6}}
J
    md5sum <"${BASH_SOURCE[0]}" >"$d/ready"
}

# train NP RUN_DIR [args...]: runs reveal train with NP ranks; output in RUN_DIR.log.
train() {
    local np=$1 run=$2
    shift 2
    if [ "$np" = 1 ]; then
        "$REVEAL_BIN" train --run-dir "$run" "$@" >"$run.log" 2>&1
    else
        "$MPIRUN" --oversubscribe -np "$np" "$REVEAL_BIN" train --run-dir "$run" "$@" \
            >"$run.log" 2>&1
    fi
}

# same_curve A B [TOL]: the loss of every step of run A's metrics.jsonl equals run B's within
# TOL relative (default 1e-4); prints the worst step.
same_curve() {
    "$PY" - "$1/metrics.jsonl" "$2/metrics.jsonl" "${3:-1e-4}" <<'P'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
tol = float(sys.argv[3])
if len(a) != len(b) or not a:
    sys.exit(f"curves differ in length: {len(a)} vs {len(b)} steps")
worst, at = 0.0, None
for x, y in zip(a, b):
    if x["step"] != y["step"]:
        sys.exit(f"step {x['step']} vs {y['step']}")
    for k in ("loss", "gen", "con"):
        r = abs(x[k] - y[k]) / max(abs(y[k]), 1e-12)
        if r > worst: worst, at = r, (x["step"], k, x[k], y[k])
print(f"{len(a)} steps, worst relative difference {worst:.3g}" + (f" at step {at[0]} {at[1]} {at[2]!r} vs {at[3]!r}" if at else ""))
sys.exit(0 if worst <= tol else 1)
P
}

# wait_updates RUN_DIR N: waits (up to 60 s) until the run's metrics.jsonl has N updates.
wait_updates() {
    local n
    for _ in $(seq 1 1200); do
        n=0; [ -f "$1/metrics.jsonl" ] && n=$(wc -l <"$1/metrics.jsonl")
        [ "$n" -ge "$2" ] && return 0
        sleep 0.05
    done
}

# run_pids RUN_DIR [RANK]: the pids of the reveal processes training into RUN_DIR (of one MPI
# rank only, when RANK is given).
run_pids() {
    local p r
    for p in $(pgrep -x reveal); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "--run-dir $1 " || continue
        r=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
        if [ -z "${2:-}" ] || [ "$r" = "$2" ]; then echo "$p"; fi
    done
    return 0
}

# hit_rank SIGNAL PID JOB: sends SIGNAL (9, STOP, ...) to rank PID of the mpirun JOB (a
# background child of this shell) and waits up to 60 s for the job to end — then kills it, and
# continues a stopped rank. Sets job_ended (1 or 0), job_code (its exit status) and job_secs.
hit_rank() {
    local t0 t1
    t0=$(date +%s.%N)
    kill "-$1" "$2"
    set +e
    timeout 60 tail --pid="$3" -f /dev/null
    job_ended=$(($? == 0))
    [ "$1" != STOP ] || kill -CONT "$2" 2>/dev/null
    [ "$job_ended" = 1 ] || kill -9 "$3" 2>/dev/null
    wait "$3"
    job_code=$?
    set -e
    t1=$(date +%s.%N)
    job_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
}
