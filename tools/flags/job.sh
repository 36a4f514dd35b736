# tools/flags/job.sh — sourced by scripts/demo.sh and bench/flags_ablation/run.sh: the flags
# job's layout and training config, in one place so the demo and its ablation train the same
# model (the ablation's rows differ from it only by `reveal train --set`).
#   flags_job_files DIR STORES DATA STEPS WARM
# writes DIR/layout.json (the four stores STORES/flags-<source>) and DIR/train.json (edit rounds
# from DIR/rounds, training questions from DATA); every path absolute.
flags_job_files() {
    local dir stores data steps=$4 warm=$5
    dir=$(cd "$1" && pwd) stores=$(cd "$2" && pwd) data=$(cd "$3" && pwd)
    cat >"$dir/layout.json" <<J
{"sources": [{"name": "image_text", "type": "image-text", "stores": ["$stores/flags-image_text"]},
             {"name": "kg", "type": "kg", "stores": ["$stores/flags-kg"]},
             {"name": "qa", "type": "qa", "stores": ["$stores/flags-qa"]},
             {"name": "text", "type": "text", "stores": ["$stores/flags-text"]}]}
J
    cat >"$dir/train.json" <<J
{"data": {"layout": "$dir/layout.json", "train": "$data/vqa_train.jsonl"},
 "tokenizer": {"vocab": 3000},
 "model": {"image_size": 32, "patch": 8, "text_max": 20, "answer_max": 10, "head_pool": true,
           "latents": 16, "tau_scale": 10},
 "train": {"batch": 32, "steps": $steps, "warm_steps": $warm, "topk": 3, "log_every": 100, "min_lr": 0.0002,
           "refresh_every": 200, "edits": "$dir/rounds", "edit_every": 50, "ckpt_every": 1000,
           "threads": 2}}
J
}

# flags_edit_rounds DATA DIR N INVENT: N counterfactual rounds (seeds 1..N, half of the training
# facts each, a share INVENT of the open-vocabulary edits invented) in DIR/rounds/rNN.
flags_edit_rounds() {
    local i
    for i in $(seq 1 "$3"); do
        /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/counterfactual.py" --data "$1" \
            --out "$2/rounds/r$(printf %02d "$i")" --seed "$i" --fraction 0.5 --invent "$4" >/dev/null
    done
}
