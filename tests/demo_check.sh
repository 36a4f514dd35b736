#!/bin/bash
# tests/demo_check.sh — flags_demo_quick: runs `scripts/demo.sh --quick` with this build's
# binary into WORKDIR and checks its output: the stores, the training to its last update, the
# refresh, a dev table with a row per question type and the two accuracy columns, the JSON with
# a prediction per dev question, the baseline table and an answer with retrieved knowledge.
set -euo pipefail
: "${REVEAL_BIN:?}" "${REVEAL_SOURCE_DIR:?}"
W=${1:?usage: demo_check.sh WORKDIR}
mkdir -p "$W"
log=$W/demo.log
REVEAL_BIN=$REVEAL_BIN DEMO_OUT=$W/run DEMO_DATA=$W/flags \
    bash "$REVEAL_SOURCE_DIR/scripts/demo.sh" --quick >"$log" 2>&1 || {
    tail -40 "$log"
    echo "FAIL: the demo exited non-zero"
    exit 1
}
fail=0
need() {
    if grep -qE -- "$1" "$log"; then echo "ok: $2"; else echo "FAIL: $2 (no /$1/)"; fail=1; fi
}
need "^flags-kg +[0-9]+" "four stores listed"
need "step 400/400" "training reached its last update"
need "^refresh: [0-9]+ items encoded" "refresh"
need "^type +count +with memory +memory removed" "dev table header"
need "^capital +[0-9]+ +[0-9.]+ +[0-9.]+" "dev table rows"
need "^all +75 " "every dev question evaluated"
need "^recall@3 of the gold item" "recall@3 (train.topk of tools/flags/job.sh)"
need "^pixel nearest neighbour" "baseline"
need "^answer: " "an answer"
need "^  0\.[0-9]+  (kg|qa|text|image_text) " "retrieved knowledge with probabilities"
n=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["predictions"]))' \
    "$W/run/eval_dev.json")
[ "$n" = 75 ] && echo "ok: eval_dev.json holds 75 predictions" || { echo "FAIL: $n predictions"; fail=1; }
sed -n '/^type  *count/,/^recall/p' "$log"
exit $fail
