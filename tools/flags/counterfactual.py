"""Counterfactual knowledge edits for the flags data (docs/data.md, "facts.jsonl").

Real facts never change, so a model can memorise training answers instead of reading the
memory. An edit round swaps facts between countries — in the memory and in the training
answers together — so that only reading pays:

    /usr/bin/python3 tools/flags/counterfactual.py --data data/flags --out DIR --seed S [--fraction F]

For every relation, a fraction F of the *training* facts (dev facts are never edited) is put in
a seeded random order and each takes the statement of the next one (a cycle, so no fact keeps
its own). For an edited fact "country C takes D's statement":
  - C's KG items get D's objects (C's first triple gets D's first, and so on);
  - C's QA item gets D's answer;
  - in C's text passages that state the fact, each of C's answers becomes D's answer;
  - the training questions about the fact get D's answer and, as accepted answers, those of
    D's answers that the rewritten items now state.
Writes into DIR: kg.jsonl, qa.jsonl, text.jsonl holding only the rewritten items, under their
original keys (ingesting them replaces the old items: an edit); revert/*.jsonl, the original
items of the same keys (ingest to undo); vqa_train.jsonl, the whole training set with edited
answers; edits.jsonl, one line per edited fact. Image paths are rewritten relative to DIR.
The same data and seed give the same bytes.
"""

import argparse
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flagutil import BuildError, answer_pattern, jsonl_bytes, mentions, write_if_changed  # noqa: E402

EDITED_SOURCES = ("kg", "qa", "text")


def load(data, name):
    path = os.path.join(data, name)
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    except (OSError, json.JSONDecodeError) as e:
        raise BuildError(f"{path}: {e}") from e


def choose_edits(facts, seed, fraction):
    """[(fact of C, fact of D)]: C takes D's statement. Deterministic for a seed."""
    rng = random.Random(seed)
    pairs = []
    relations = sorted({f["relation"] for f in facts})
    for relation in relations:
        pool = [f for f in facts if f["relation"] == relation and f["split"] == "train" and f["supported"]]
        rng.shuffle(pool)
        chosen = pool[: int(round(fraction * len(pool)))]
        for i, fact in enumerate(chosen):
            donor = chosen[(i + 1) % len(chosen)]
            if donor is not fact and {a.casefold() for a in donor["answers"]} != {a.casefold() for a in fact["answers"]}:
                pairs.append((fact, donor))
    return pairs


def rewrite(items, pairs):
    """The rewritten items {(source, key): item} and the new accepted answers per fact."""
    edited = {}

    def current(source, key):
        return edited.get((source, key)) or dict(items[source][key])

    new_answers = {}
    for fact, donor in pairs:
        keys = lambda f, s: [i["key"] for i in f["items"] if i["source"] == s]  # noqa: E731
        donor_objects = [items["kg"][k]["object"] for k in keys(donor, "kg")]
        written = []
        for i, key in enumerate(keys(fact, "kg")):
            item = current("kg", key)
            item["object"] = donor_objects[min(i, len(donor_objects) - 1)]
            edited[("kg", key)] = item
            written.append(item["object"])
        for key in keys(fact, "qa"):
            item = current("qa", key)
            item["answer"] = items["qa"][keys(donor, "qa")[0]]["answer"]
            edited[("qa", key)] = item
            written.append(item["answer"])
        # One pass over all of C's answers, longest first: "Indian rupee" is replaced whole,
        # and the inserted answer is never matched again.
        old = answer_pattern("|".join(re.escape(a) for a in sorted(fact["answers"], key=len, reverse=True)),
                             literal=False)
        for key in keys(fact, "text"):
            item = current("text", key)
            item["text"] = old.sub(lambda _: donor["answer"], item["text"])
            edited[("text", key)] = item
            written.append(item["text"])
        stated = "\n".join(written)
        new_answers[(fact["country"], fact["relation"])] = (
            donor["answer"], [a for a in donor["answers"] if mentions(stated, a)])
    return edited, new_answers


def main():
    ap = argparse.ArgumentParser(description="counterfactual knowledge edits for the flags data")
    ap.add_argument("--data", default="data/flags", help="output directory of tools/flags/build.sh")
    ap.add_argument("--out", required=True, help="directory for the edit files")
    ap.add_argument("--seed", type=int, required=True, help="which edit round (any integer)")
    ap.add_argument("--fraction", type=float, default=0.5, help="share of training facts edited per relation")
    args = ap.parse_args()
    if not 0.0 <= args.fraction <= 1.0:
        ap.error(f"--fraction {args.fraction}: must be between 0 and 1")
    try:
        facts = load(args.data, "facts.jsonl")
        items = {s: {i["key"]: i for i in load(args.data, s + ".jsonl")} for s in EDITED_SOURCES}
        train = load(args.data, "vqa_train.jsonl")
    except BuildError as e:
        print(f"counterfactual: {e}", file=sys.stderr)
        return 1
    pairs = choose_edits(facts, args.seed, args.fraction)
    edited, new_answers = rewrite(items, pairs)
    def moved(item, directory):
        """The item with its image path relative to the file it is written to."""
        item = dict(item)
        if "image" in item:
            item["image"] = os.path.relpath(os.path.join(os.path.abspath(args.data), item["image"]),
                                            os.path.abspath(directory))
        return item

    revert_dir = os.path.join(args.out, "revert")

    for source in EDITED_SOURCES:
        keys = sorted(k for s, k in edited if s == source)
        write_if_changed(os.path.join(args.out, source + ".jsonl"),
                         jsonl_bytes([moved(edited[(source, k)], args.out) for k in keys]))
        write_if_changed(os.path.join(revert_dir, source + ".jsonl"),
                         jsonl_bytes([moved(items[source][k], revert_dir) for k in keys]))
    questions = []
    for q in train:
        change = new_answers.get((q["country"], q["type"]))
        if change:
            q = dict(q, answer=change[0], answers=change[1])
        questions.append(moved(q, args.out))
    write_if_changed(os.path.join(args.out, "vqa_train.jsonl"), jsonl_bytes(questions))
    write_if_changed(os.path.join(args.out, "edits.jsonl"), jsonl_bytes([
        dict(country=f["country"], relation=f["relation"], from_country=d["country"],
             answers_before=f["answers"], answer_after=new_answers[(f["country"], f["relation"])][0],
             answers_after=new_answers[(f["country"], f["relation"])][1]) for f, d in pairs]))
    counts = {s: sum(1 for src, _ in edited if src == s) for s in EDITED_SOURCES}
    print(f"counterfactual: seed {args.seed}, {len(pairs)} facts edited; items rewritten: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
