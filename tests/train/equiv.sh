#!/bin/bash
# tests/train/equiv.sh — mpi_train_equiv: the same seed and config give the same loss curve
# (≤ 1e-4 relative, every one of 24 steps) in one process, with -np 2 (one worker holding every
# store), -np 4 (three workers, one store each), and with the kg source split in two shards
# held by two different workers (-np 5), against the single process on the whole stores; and
# -np 4 with a team of 2 threads on rank 0 (train.threads), which splits its matmuls and loops.
# Also: the memory is refreshed at the end of the warm start (update 8) and then every 10
# updates, in one process and with workers.
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
train 4 "$W/eq_np4_t2" --config "$W/tiny.json" --set train.threads=2 --resume never
set +x
fail=0
for r in eq_np2 eq_np4 eq_shard_np1 eq_shard_np5 eq_np4_t2; do
    echo -n "$r vs eq_np1: "
    same_curve "$W/$r" "$W/eq_np1" 1e-4 || { echo "FAIL: $r"; fail=1; }
done
for r in eq_np1 eq_np4; do
    # metrics line n is update n; a refresh before update n shows as its "refresh" time
    got=$(python3 -c 'import json, sys
print(" ".join(str(m["step"]) for m in map(json.loads, open(sys.argv[1])) if "ms" in m and m["ms"]["refresh"] > 0))' \
        "$W/$r/metrics.jsonl")
    echo "$r: refreshed before updates $got"
    [ "$got" = "9 11 21" ] || { echo "FAIL: $r refreshed before updates '$got', not '9 11 21'"; fail=1; }
done
grep -h "rank 0\].*step 24/24" "$W"/eq_np1.log "$W"/eq_np4.log || true
grep -q "on rank 3" "$W/eq_np4.log" || { echo "FAIL: np4 did not use three workers"; fail=1; }
grep -q "rank 0\] threads 2 (from config): .*OpenMP 2" "$W/eq_np4_t2.log" ||
    { echo "FAIL: rank 0 of eq_np4_t2 did not run 2 threads"; grep "threads" "$W/eq_np4_t2.log"; fail=1; }
exit $fail
