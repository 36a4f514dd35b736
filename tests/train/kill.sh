#!/bin/bash
# tests/train/kill.sh — mpi_train_kill: kill -9 of a worker mid-run ends the job non-zero within
# 30 s with a message naming the lost rank; `--resume auto` then finishes the run from its last
# checkpoint, and the user's stores were never written.
. "$(dirname "$0")/lib.sh"
W=${1:?usage: kill.sh WORKDIR}
make_world "$W"
rm -rf "$W"/kl_*
opts=(--config "$W/tiny.json" --set train.steps=40 --set train.ckpt_every=5)
before=$("$REVEAL_BIN" stats --store "$W/stores/kg" | md5sum)
"$MPIRUN" --oversubscribe -np 4 "$REVEAL_BIN" train --run-dir "$W/kl_run" "${opts[@]}" \
    --resume never >"$W/kl_run.log" 2>&1 &
mp=$!
wait_updates "$W/kl_run" 12
victim=$(run_pids "$W/kl_run" 2)
[ -n "$victim" ] || { echo "FAIL: rank 2 not found"; exit 1; }
hit_rank 9 "$victim" $mp
echo "after kill -9 of rank 2 (pid $victim): exit $job_code in $job_secs s"
grep -i "rank 2" "$W/kl_run.log" | head -3
[ "$job_code" != 0 ] || { echo "FAIL: the job exited 0"; exit 1; }
awk -v s="$job_secs" 'BEGIN { exit !(s < 30) }' || { echo "FAIL: took $job_secs s"; exit 1; }
grep -qi "rank 2" "$W/kl_run.log" || { echo "FAIL: the lost rank is not named"; exit 1; }
train 4 "$W/kl_run" "${opts[@]}" --resume auto
grep -h "resuming from" "$W/kl_run.log"
last=$(tail -n 1 "$W/kl_run/metrics.jsonl" | sed 's/.*"step": \([0-9]*\).*/\1/')
[ "$last" = 40 ] || { echo "FAIL: resumed run ended at step $last"; exit 1; }
after=$("$REVEAL_BIN" stats --store "$W/stores/kg" | md5sum)
[ "$before" = "$after" ] || { echo "FAIL: the user's store changed"; exit 1; }
echo "resumed to step 40; the user's stores unchanged"
