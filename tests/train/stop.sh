#!/bin/bash
# tests/train/stop.sh — mpi_train_stop: a worker that stops answering (SIGSTOP: alive, so MPI
# does not end the job) mid-run makes the job end non-zero within its timeout_s plus a margin,
# with a message saying what was not completed within how long — wherever the ranks were
# waiting: a send or a reply, or the gradient all-reduce (whose wait is bounded too: the ranks
# already in it report it, e.g. "the gradient all-reduce of step 14 did not complete within 3.0 s").
. "$(dirname "$0")/lib.sh"
W=${1:?usage: stop.sh WORKDIR}
make_world "$W"
rm -rf "$W"/st_*
"$MPIRUN" --oversubscribe -np 4 "$REVEAL_BIN" train --run-dir "$W/st_run" --config "$W/tiny.json" \
    --set train.steps=400 --set train.timeout_s=3 --resume never >"$W/st_run.log" 2>&1 &
mp=$!
wait_updates "$W/st_run" 12
victim=$(run_pids "$W/st_run" 2)
[ -n "$victim" ] || { echo "FAIL: rank 2 not found"; kill $mp; exit 1; }
hit_rank STOP "$victim" $mp
echo "after SIGSTOP of rank 2 (pid $victim): exit $job_code in $job_secs s"
grep -h "within 3.0 s" "$W/st_run.log" | head -3
[ "$job_ended" = 1 ] || { echo "FAIL: the job was still running 60 s later"; exit 1; }
[ "$job_code" != 0 ] || { echo "FAIL: the job exited 0"; exit 1; }
grep -q "within 3.0 s" "$W/st_run.log" || { echo "FAIL: no message naming the 3 s wait"; exit 1; }
