#!/bin/bash
# bench/scaling/run.sh — step time of `reveal train` and its breakdown at -np 1, 2, 3 and 5
# (rank 0 + 0, 1, 2, 4 workers) on the generated world with four knowledge sources, plus the
# bytes each step moves, for the cluster model of docs/scaling.md.
#
#   bench/scaling/run.sh [OUT]        (default OUT=/tmp/reveal-scaling; needs build/cli/reveal)
#
# On a 2-core machine -np 3 and 5 are oversubscribed (more ranks than cores): their times show
# the protocol's overhead under contention, not a speed-up. Each run trains STEPS updates
# (warm start WARM, then memory training); the medians are over the memory-training updates.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
R=${REVEAL_BIN:-$here/build/cli/reveal}
OUT=${1:-/tmp/reveal-scaling}
STEPS=${STEPS:-80}
WARM=${WARM:-20}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
rm -rf "$OUT"
mkdir -p "$OUT"
"$R" world --out "$OUT/w" --seed 1 >/dev/null
for t in image_text:image-text kg:kg qa:qa text:text; do
    "$R" ingest --type "${t#*:}" --input "$OUT/w/${t%%:*}.jsonl" --store "$OUT/st/${t%%:*}" \
        --image-size 16 >/dev/null
done
cat >"$OUT/layout.json" <<J
{"sources": [{"name": "image_text", "type": "image-text", "stores": ["$OUT/st/image_text"]},
 {"name": "kg", "type": "kg", "stores": ["$OUT/st/kg"]}, {"name": "qa", "type": "qa", "stores": ["$OUT/st/qa"]},
 {"name": "text", "type": "text", "stores": ["$OUT/st/text"]}]}
J
cat >"$OUT/config.json" <<J
{"data": {"layout": "$OUT/layout.json", "train": "$OUT/w/questions_train.jsonl"},
 "model": {"text_max": 24},
 "train": {"batch": 32, "steps": $STEPS, "warm_steps": $WARM, "topk": 4, "rho": 0.25,
           "refresh_every": 0, "log_every": 1000, "checksum_every": 0}}
J
echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(uptime | sed 's/.*load average/load average/')"
printf "%-4s %-8s %10s %10s %10s %10s %10s\n" np workers retrieval fusion backward allreduce total
for np in 1 2 3 5; do
    run=$OUT/np$np
    if [ "$np" = 1 ]; then
        "$R" train --config "$OUT/config.json" --run-dir "$run" --resume never >"$run.log" 2>&1
    else
        mpirun --oversubscribe -np "$np" "$R" train --config "$OUT/config.json" --run-dir "$run" \
            --resume never >"$run.log" 2>&1
    fi
    /usr/bin/python3 - "$run/metrics.jsonl" "$np" "$WARM" <<'P'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mem = [r["ms"] for r in rows if r["step"] > int(sys.argv[3]) + 5]
med = {k: statistics.median(m[k] for m in mem) for k in ("retrieval", "fusion", "backward", "allreduce", "total")}
np = int(sys.argv[2])
print(f"{np:<4} {np - 1:<8} " + " ".join(f"{med[k]:10.1f}" for k in ("retrieval", "fusion", "backward", "allreduce", "total")))
P
done
grep -h "parameters" "$OUT/np1.log" | head -1
echo "medians in ms over updates $((WARM + 6))..$STEPS; reproduce: bench/scaling/run.sh $OUT"
