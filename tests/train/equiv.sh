#!/bin/bash
# tests/train/equiv.sh — mpi_train_equiv: the same seed and config give the same loss curve
# (≤ 1e-4 relative, every one of 24 steps) in one process, with -np 2 (one worker holding every
# store), -np 4 (three workers, one store each), and with the kg source split in two shards
# held by two different workers (-np 5), against the single process on the whole stores.
. "$(dirname "$0")/lib.sh"
W=${1:?usage: equiv.sh WORKDIR}
make_world "$W"
rm -rf "$W"/eq_*
set -x
train 1 "$W/eq_np1" --config "$W/tiny.json" --resume never
train 2 "$W/eq_np2" --config "$W/tiny.json" --resume never
train 4 "$W/eq_np4" --config "$W/tiny.json" --resume never
train 1 "$W/eq_shard_np1" --config "$W/tiny.json" --set "data.layout=$W/sharded.json" --resume never
train 5 "$W/eq_shard_np5" --config "$W/tiny.json" --set "data.layout=$W/sharded.json" --resume never
set +x
fail=0
for r in eq_np2 eq_np4 eq_shard_np1 eq_shard_np5; do
    echo -n "$r vs eq_np1: "
    same_curve "$W/$r" "$W/eq_np1" 1e-4 || { echo "FAIL: $r"; fail=1; }
done
grep -h "rank 0\].*step 24/24" "$W"/eq_np1.log "$W"/eq_np4.log || true
grep -q "on rank 3" "$W/eq_np4.log" || { echo "FAIL: np4 did not use three workers"; fail=1; }
exit $fail
