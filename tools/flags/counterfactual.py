"""Counterfactual knowledge edits for the flags data (docs/data.md, "facts.jsonl").

Real facts never change, so a model can memorise training answers instead of reading the
memory. An edit round swaps facts between countries — in the memory and in the training
answers together — so that only reading pays:

    /usr/bin/python3 tools/flags/counterfactual.py --data data/flags --out DIR --seed S [--fraction F] [--invent I]

For every relation, a fraction F of the *training* facts (dev facts are never edited) is put in
a seeded random order and each takes the statement of the next one (a cycle, so no fact keeps
its own). For an edited fact "country C takes D's statement":
  - C's KG items get D's objects (C's first triple gets D's first, and so on);
  - C's QA item gets D's answer;
  - in C's text passages that state the fact, each of C's answers becomes D's answer;
  - the training questions about the fact get D's answer and, as accepted answers, those of
    D's answers that the rewritten items now state.
With --invent I, a share I of the edits on open-vocabulary relations (capital, TLD, ...) take an
invented statement instead: the fact's own answers with every letter or digit run replaced by a
run of the same shape found in the memory, so that training answers are not limited to the
training facts' strings and only copying from memory can produce them (docs/data.md).
Writes into DIR: kg.jsonl, qa.jsonl, text.jsonl holding only the rewritten items, under their
original keys (ingesting them replaces the old items: an edit); revert/*.jsonl, the original
items of the same keys (ingest to undo); vqa_train.jsonl, the whole training set with edited
answers; edits.jsonl, one line per edited fact. Image paths are rewritten relative to DIR.
The same data and seed give the same bytes.
"""

import argparse
import itertools
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flagutil import BuildError, answer_pattern, jsonl_bytes, mentions, write_if_changed  # noqa: E402

EDITED_SOURCES = ("kg", "qa", "text")
# Relations whose training facts have at least this share of distinct answers get invented
# statements (capital, TLD, language, ...); the others (continent, landlocked, region) are
# small sets whose answers a model may rightly learn as a prior.
OPEN_VOCABULARY = 0.3


def load(data, name):
    path = os.path.join(data, name)
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    except (OSError, json.JSONDecodeError) as e:
        raise BuildError(f"{path}: {e}") from e


def item_keys(fact, source):
    """The keys of the fact's items in one source, in facts.jsonl order."""
    return [i["key"] for i in fact["items"] if i["source"] == source]


def statement_of(donor, items):
    """What a donor fact states: its answers, its KG objects (in item order), its QA answer."""
    return dict(origin=donor["country"], answer=donor["answer"], answers=donor["answers"],
                kg=[items["kg"][k]["object"] for k in item_keys(donor, "kg")],
                qa=items["qa"][item_keys(donor, "qa")[0]]["answer"])


RUN = re.compile(r"\d+|[^\W\d_]+|.", re.S)


def run_shape(run):
    """'Kathmandu' -> 'Aa', 'NPR' -> 'AAA', 'np' -> 'aa', '977' -> '999': the character classes
    (upper, lower, digit), repeats collapsed in letter runs longer than three."""
    classes = "".join("A" if c.isupper() else "a" if c.islower() else "9" if c.isdigit() else c for c in run)
    return classes if len(run) <= 3 or run.isdigit() else "".join(k for k, _ in itertools.groupby(classes))


def run_pool(items):
    """Every letter and digit run the memory states, by shape: what invented statements are
    made of."""
    texts = [i["object"] for i in items["kg"].values()] + [i["answer"] for i in items["qa"].values()]
    texts += [i["text"] for i in items["text"].values()]
    pool = {}
    for text in texts:
        for run in RUN.findall(text):
            if run[0].isalnum():
                pool.setdefault(run_shape(run), set()).add(run)
    return {shape: sorted(runs) for shape, runs in pool.items()}


def invented(fact, items, pool, rng):
    """The fact's own statement with every letter and digit run replaced by a random memory run
    of the same shape, one replacement per distinct run ("+376" and "376" stay consistent)."""
    chosen = {}

    def replace(run):
        choices = pool.get(run_shape(run), []) if run[0].isalnum() else []
        if len(choices) < 2:
            return run
        while run not in chosen or chosen[run] == run:
            chosen[run] = rng.choice(choices)
        return chosen[run]

    def text(t):
        return "".join(replace(run) for run in RUN.findall(t))

    own = statement_of(fact, items)
    return dict(origin="(invented)", answer=text(own["answer"]), answers=[text(a) for a in own["answers"]],
                kg=[text(o) for o in own["kg"]], qa=text(own["qa"]))


def choose_edits(facts, items, seed, fraction, invent):
    """[(fact of C, statement)]: C takes another training country's statement or, for a share
    `invent` of the edits on open-vocabulary relations, an invented one. Deterministic."""
    rng = random.Random(seed)
    pool = run_pool(items) if invent > 0 else {}
    pairs = []
    relations = sorted({f["relation"] for f in facts})
    for relation in relations:
        candidates = [f for f in facts if f["relation"] == relation and f["split"] == "train" and f["supported"]]
        open_vocabulary = len({f["answer"].casefold() for f in candidates}) >= OPEN_VOCABULARY * len(candidates)
        rng.shuffle(candidates)
        chosen = candidates[: int(round(fraction * len(candidates)))]
        for i, fact in enumerate(chosen):
            if invent > 0 and open_vocabulary and rng.random() < invent:
                statement = invented(fact, items, pool, rng)
            else:
                statement = statement_of(chosen[(i + 1) % len(chosen)], items)
            if {a.casefold() for a in statement["answers"]} != {a.casefold() for a in fact["answers"]}:
                pairs.append((fact, statement))
    return pairs


def rewrite(items, pairs):
    """The rewritten items {(source, key): item} and the new accepted answers per fact."""
    edited = {}

    def current(source, key):
        return edited.get((source, key)) or dict(items[source][key])

    new_answers = {}
    for fact, statement in pairs:
        written = []
        for i, key in enumerate(item_keys(fact, "kg")):
            item = current("kg", key)
            item["object"] = statement["kg"][min(i, len(statement["kg"]) - 1)]
            edited[("kg", key)] = item
            written.append(item["object"])
        for key in item_keys(fact, "qa"):
            item = current("qa", key)
            item["answer"] = statement["qa"]
            edited[("qa", key)] = item
            written.append(item["answer"])
        # One pass over all of C's answers, longest first: "Indian rupee" is replaced whole,
        # and the inserted answer is never matched again.
        old = answer_pattern("|".join(re.escape(a) for a in sorted(fact["answers"], key=len, reverse=True)),
                             literal=False)
        for key in item_keys(fact, "text"):
            item = current("text", key)
            item["text"] = old.sub(lambda _: statement["answer"], item["text"])
            edited[("text", key)] = item
            written.append(item["text"])
        stated = "\n".join(written)
        new_answers[(fact["country"], fact["relation"])] = (
            statement["answer"], [a for a in statement["answers"] if mentions(stated, a)])
    return edited, new_answers


def main():
    ap = argparse.ArgumentParser(description="counterfactual knowledge edits for the flags data")
    ap.add_argument("--data", default="data/flags", help="output directory of tools/flags/build.sh")
    ap.add_argument("--out", required=True, help="directory for the edit files")
    ap.add_argument("--seed", type=int, required=True, help="which edit round (any integer)")
    ap.add_argument("--fraction", type=float, default=0.5, help="share of training facts edited per relation")
    ap.add_argument("--invent", type=float, default=0.0,
                    help="share of the edits on open-vocabulary relations given an invented statement")
    args = ap.parse_args()
    if not 0.0 <= args.fraction <= 1.0:
        ap.error(f"--fraction {args.fraction}: must be between 0 and 1")
    if not 0.0 <= args.invent <= 1.0:
        ap.error(f"--invent {args.invent}: must be between 0 and 1")
    try:
        facts = load(args.data, "facts.jsonl")
        items = {s: {i["key"]: i for i in load(args.data, s + ".jsonl")} for s in EDITED_SOURCES}
        train = load(args.data, "vqa_train.jsonl")
    except BuildError as e:
        print(f"counterfactual: {e}", file=sys.stderr)
        return 1
    pairs = choose_edits(facts, items, args.seed, args.fraction, args.invent)
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
        dict(country=f["country"], relation=f["relation"], from_country=d["origin"],
             answers_before=f["answers"], answer_after=new_answers[(f["country"], f["relation"])][0],
             answers_after=new_answers[(f["country"], f["relation"])][1]) for f, d in pairs]))
    counts = {s: sum(1 for src, _ in edited if src == s) for s in EDITED_SOURCES}
    print(f"counterfactual: seed {args.seed}, {len(pairs)} facts edited; items rewritten: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
