#!/bin/bash
# tests/train/layout.sh — mpi_train_layout: a layout that cannot run (a missing store, a store
# of the wrong type, a duplicated source, more worker ranks than stores) and a bad config are
# refused before any work: one clear message from rank 0, a non-zero exit, no hang. So are a
# missing checkpoint, layout, task file or image given to refresh, eval and answer.
. "$(dirname "$0")/lib.sh"
W=${1:?usage: layout.sh WORKDIR}
make_world "$W"
fail=0
# expect NP WANT LAYOUT_JSON [extra args]: the run fails within 60 s printing WANT once.
expect() {
    local np=$1 want=$2 layout=$3
    shift 3
    printf '%s\n' "$layout" >"$W/bad_layout.json"
    rm -rf "$W/bad_run"
    set +e
    timeout 60 "$MPIRUN" --oversubscribe -np "$np" "$REVEAL_BIN" train --run-dir "$W/bad_run" \
        --config "$W/tiny.json" --set "data.layout=$W/bad_layout.json" "$@" >"$W/bad.log" 2>&1
    local code=$?
    set -e
    local count
    count=$(grep -c -- "$want" "$W/bad.log" || true)
    if [ "$code" = 0 ] || [ "$code" = 124 ] || [ "$count" != 1 ]; then
        echo "FAIL (-np $np, exit $code, message seen $count times): want '$want'"
        cat "$W/bad.log"
        fail=1
    else
        echo "ok: -np $np exit $code: $(grep -m1 -- "$want" "$W/bad.log")"
    fi
}
S=$W/stores
expect 2 "cannot open\|does not exist\|No such file" \
    "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"$S/nowhere\"]}]}"
expect 3 "holds qa items, the layout's source kg is kg" \
    "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"$S/qa\"]}, {\"name\": \"it\", \"type\": \"image-text\", \"stores\": [\"$S/image_text\"]}]}"
expect 2 "kg" \
    "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"$S/kg\"]}, {\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"$S/kg_a\"]}]}"
expect 5 "3 stores: run -np 4 or fewer" "$(cat "$W/whole.json")"
expect 2 "train.batch must be an integer" "$(cat "$W/whole.json")" --set train.batch='"many"'
# refresh, eval and answer refuse a missing checkpoint, layout or task file by name, exit 1
"$REVEAL_BIN" train --run-dir "$W/bad_ck" --config "$W/tiny.json" --set train.steps=1 \
    --set train.warm_steps=1 --set train.warmup=1 --set data.dev= --resume never >/dev/null 2>&1
CK=$W/bad_ck/checkpoints/step-00000001
refuse() {
    local want=$1
    shift
    set +e
    timeout 60 "$REVEAL_BIN" "$@" >"$W/bad.log" 2>&1
    local code=$?
    set -e
    if [ "$code" = 1 ] && grep -q -- "$want" "$W/bad.log"; then
        echo "ok: reveal $1: $(head -1 "$W/bad.log")"
    else
        echo "FAIL (reveal $1, exit $code): want '$want'"
        cat "$W/bad.log"
        fail=1
    fi
}
refuse "$W/nowhere: cannot open" eval --checkpoint "$W/nowhere" --data "$W/world/questions_test.jsonl"
refuse "$W/none.json: cannot open" eval --checkpoint "$CK" --layout "$W/none.json" \
    --data "$W/world/questions_test.jsonl"
refuse "$W/none.jsonl: cannot open" eval --checkpoint "$CK" --data "$W/none.jsonl"
refuse "$W/none.json: cannot open" refresh --checkpoint "$CK" --layout "$W/none.json"
refuse "$W/none.png: cannot open" answer --checkpoint "$CK" --image "$W/none.png" --question "hi"
exit $fail
