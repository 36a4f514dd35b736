#!/bin/bash
# tests/train/refresh_kill.sh — refresh_kill: `reveal refresh --stale-only` killed with kill -9
# midway over a 30,000-item store, then run again: it completes, and every item ends encoded
# exactly once with the final encoder version (items done before the kill + items encoded by the
# re-run = all items; none left at another version).
. "$(dirname "$0")/lib.sh"
W=${1:?usage: refresh_kill.sh WORKDIR}
make_world "$W"
R=$REVEAL_BIN
rm -rf "$W"/rk_*
# two checkpoints of a short run: two encoder versions
"$R" train --run-dir "$W/rk_run" --config "$W/tiny.json" --set train.steps=2 \
    --set train.warm_steps=1 --set train.warmup=1 --set train.ckpt_every=1 --set train.keep_last=0 \
    --set data.dev= --resume never >"$W/rk_run.log" 2>&1
CK1=$W/rk_run/checkpoints/step-00000001 CK2=$W/rk_run/checkpoints/step-00000002
# a large kg store (text only) in place of the world's
awk 'BEGIN { for (i = 0; i < 30000; i++) printf "ent%d\trel%d\tobj%d\n", i, i % 7, (i * 7919) % 5003 }' \
    >"$W/rk_kg.tsv"
"$R" ingest --type kg --input "$W/rk_kg.tsv" --store "$W/rk_kg" --image-size 16 >/dev/null
cp -r "$W/stores/image_text" "$W/rk_it"
cp -r "$W/stores/qa" "$W/rk_qa"
cat >"$W/rk_layout.json" <<J
{"sources": [{"name": "image_text", "type": "image-text", "stores": ["$W/rk_it"]},
             {"name": "kg", "type": "kg", "stores": ["$W/rk_kg"]},
             {"name": "qa", "type": "qa", "stores": ["$W/rk_qa"]}]}
J
"$R" refresh --checkpoint "$CK1" --layout "$W/rk_layout.json" >"$W/rk_full.txt" 2>&1
cat "$W/rk_full.txt"
full=$(sed -n 's/^refresh: .* in \([0-9.]*\) s.*/\1/p' "$W/rk_full.txt")
total=$(sed -n 's/^refresh: \([0-9]*\) items.*/\1/p' "$W/rk_full.txt")
# the refresh to the second version, killed once set up and 40% of a full refresh's time into
# encoding
"$R" refresh --checkpoint "$CK2" --layout "$W/rk_layout.json" --stale-only >"$W/rk_cut.txt" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    grep -q "refresh with encoder version" "$W/rk_cut.txt" && break
    sleep 0.02
done
sleep "$(awk -v t="$full" 'BEGIN { printf "%.2f", t * 0.4 }')"
kill -9 $pid
set +e
wait $pid
code=$?
set -e
echo "refresh killed (exit $code)"
[ "$code" = 137 ] || { echo "FAIL: the refresh was not killed midway (exit $code)"; exit 1; }
v2=$(sed -n 's/.*encoder version \([0-9]*\).*/\1/p' "$W/rk_cut.txt" | head -1)
count_v2() {
    local n=0 s c
    for s in rk_it rk_kg rk_qa; do
        c=$("$R" stats --store "$W/$s" | sed -n "s/^keys .* $v2 (\([0-9]*\)).*/\1/p")
        n=$((n + ${c:-0}))
    done
    echo $n
}
k1=$(count_v2)
"$R" refresh --checkpoint "$CK2" --layout "$W/rk_layout.json" --stale-only >"$W/rk_rerun.txt" 2>&1
cat "$W/rk_rerun.txt" | grep "^refresh"
k2=$(sed -n 's/^refresh: \([0-9]*\) items.*/\1/p' "$W/rk_rerun.txt")
k_end=$(count_v2)
echo "items $total: $k1 at version $v2 after the kill, $k2 encoded by the re-run, $k_end at version $v2 at the end"
[ "$k1" -gt 0 ] && [ "$k1" -lt "$total" ] || { echo "FAIL: the kill did not land midway"; exit 1; }
[ $((k1 + k2)) = "$total" ] || { echo "FAIL: $k1 + $k2 != $total"; exit 1; }
[ "$k_end" = "$total" ] || { echo "FAIL: $k_end of $total items at the final version"; exit 1; }
for s in rk_it rk_kg rk_qa; do
    "$R" stats --store "$W/$s" | grep -E "^(keys|values)"
done
