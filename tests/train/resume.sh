#!/bin/bash
# tests/train/resume.sh — mpi_train_resume: a run stopped by SIGTERM (sent to every rank, as a
# batch scheduler does) writes a checkpoint at the next update and exits 75; `--resume auto`
# continues it, and the whole curve equals the uninterrupted run's step by step.
. "$(dirname "$0")/lib.sh"
W=${1:?usage: resume.sh WORKDIR}
make_world "$W"
rm -rf "$W"/rs_*
opts=(--config "$W/tiny.json" --set train.steps=120 --set train.ckpt_every=0 --set train.log_every=40)
train 2 "$W/rs_full" "${opts[@]}" --resume never
# the interrupted run: SIGTERM to its ranks once 10 updates are in metrics.jsonl
"$MPIRUN" --oversubscribe -np 2 "$REVEAL_BIN" train --run-dir "$W/rs_cut" "${opts[@]}" \
    --resume never >"$W/rs_cut.log" 2>&1 &
mp=$!
wait_updates "$W/rs_cut" 10
for p in $(run_pids "$W/rs_cut"); do kill -TERM "$p"; done
set +e
wait $mp
code=$?
set -e
echo "interrupted run: exit $code after $(wc -l <"$W/rs_cut/metrics.jsonl") updates"
grep -h "signal 15" "$W/rs_cut.log" || true
[ "$code" = 75 ] || { echo "FAIL: expected exit 75"; cat "$W/rs_cut.log"; exit 1; }
ls "$W/rs_cut/checkpoints"
train 2 "$W/rs_cut" "${opts[@]}" --resume auto
grep -h "resuming from" "$W/rs_cut.log"
same_curve "$W/rs_cut" "$W/rs_full" 1e-6
