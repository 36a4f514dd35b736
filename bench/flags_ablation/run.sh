#!/usr/bin/env bash
# bench/flags_ablation/run.sh — the ablation tables of docs/results.md ("What changed" and
# "Earlier"): the flags demo's data, config (tools/flags/job.sh) and budget, trained in one
# process per variant, then refreshed and evaluated on the dev set. Each variant is NAME:INVENT[:KEY=VALUE,...]
# (INVENT: counterfactual.py --invent share; KEY=VALUE: `reveal train --set` overrides).
#   bench/flags_ablation/run.sh DATA OUT [VARIANT...]
#   default variants: the table's rows, e.g. both8:0.5:model.latents=8
# DATA is a full tools/flags/build.sh output; needs a built reveal (REVEAL_BIN, default
# build/cli/reveal). One variant is ~10 min on an idle 2-core machine; run two at a time at most.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/flags/job.sh
data=$(cd "$1" && pwd) out=$2
shift 2
variants=("$@")
# the rows before "recipe" held the learning rate constant (train.min_lr = the peak, 2e-3); the
# rows before "k3" read K = 4 per source (the demo now reads 3)
k=train.topk=4 c=train.topk=4,train.min_lr=0.002 long=train.warm_steps=3000,train.steps=6000
[[ ${#variants[@]} -gt 0 ]] || variants=(before:0:model.latents=4,$c invented:0.5:model.latents=4,$c
    latents16:0:$c both8:0.5:model.latents=8,$c both8dec2:0.5:model.latents=8,model.decoder_blocks=2,$c
    both16:0.5:$c both16s2:0.5:model.seed=2,train.seed=2,$c both32:0.5:model.latents=32,$c
    invent1:1:$c warm3000:0.5:train.warm_steps=3000,train.steps=4500,$c
    recipe:1:$k recipe_s2:1:model.seed=2,train.seed=2,$k recipe6000:1:$long,$k
    k3:1:$long k2:1:$long,train.topk=2)
reveal=$(realpath "${REVEAL_BIN:-build/cli/reveal}")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [[ ! -e "$out/stores/ready" ]]; then
    for src in image_text:image-text kg:kg text:text qa:qa; do
        "$reveal" ingest --type "${src##*:}" --input "$data/${src%%:*}.jsonl" \
            --store "$out/stores/flags-${src%%:*}" --name "flags-${src%%:*}" --quiet >/dev/null
    done
    touch "$out/stores/ready"
fi
printf '%-12s %8s %8s %8s %8s %8s %8s %8s\n' variant memory removed capital tld calling demonym recall
for v in "${variants[@]}"; do
    IFS=: read -r name invent sets <<<"$v"
    d=$out/$name
    rm -rf "$d" && mkdir -p "$d"
    # each variant refreshes its own copy: `reveal refresh` writes the stores it is given
    cp -r "$out/stores" "$d/stores"
    flags_edit_rounds "$data" "$d" 16 "$invent"
    flags_job_files "$d" "$d/stores" "$data" 3000 1500
    IFS=, read -ra kv <<<"${sets:-}"
    # one thread: rows may run two at a time (results do not depend on it beyond float rounding)
    args=(--set train.threads=1)
    for s in "${kv[@]}"; do args+=(--set "$s"); done
    "$reveal" train --config "$d/train.json" --run-dir "$d/run" --resume never "${args[@]}" >"$d/train.log" 2>&1
    ck=$(ls -d "$d"/run/checkpoints/step-* | tail -1)
    "$reveal" refresh --checkpoint "$ck" >"$d/refresh.log" 2>&1
    "$reveal" eval --checkpoint "$ck" --data "$data/vqa_dev.jsonl" --json "$d/eval.json" >"$d/eval.txt" 2>/dev/null
    /usr/bin/python3 - "$name" "$d/eval.json" <<'P'
import json, sys
d = json.load(open(sys.argv[2]))
t, r = d["by_type"]["per_type"], d["by_type_memory_removed"]["per_type"]
cell = lambda k: "%.0f/%.0f" % (100 * t[k]["accuracy"], 100 * r[k]["accuracy"])
print("%-12s %8.1f %8.1f %8s %8s %8s %8s %8.3f" % (sys.argv[1], 100 * d["accuracy"], 100 * d["accuracy_memory_removed"],
      cell("capital"), cell("tld"), cell("calling_code"), cell("demonym"), d["recall"]))
P
done
