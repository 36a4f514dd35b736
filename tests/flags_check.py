"""ctest flags_build: the country-flags data builder (tools/flags) on a --quick build.

Builds twice into fresh directories and once more in place, then checks, reading only the
files written: identical bytes across runs; a re-run renders and rewrites nothing; every
JSONL line has the fields its type needs and its image exists at the right size; Twemoji
images only in dev; dev facts never asked in training; every accepted answer of every
question occurs in a knowledge item about its country; gold keys name real items;
summary.json agrees with the files; the support check drops and counts an unsupported
question; bad arguments are refused with a message; the pixel nearest-neighbour baseline
scores every dev question; counterfactual edits are deterministic, touch only training facts
and leave no item stating an old answer; and, once the reveal binary has `ingest`, that it accepts every line
of the four knowledge sources. Run with Debian's /usr/bin/python3.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

SRC = os.environ.get("REVEAL_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD_SH = os.path.join(SRC, "tools", "flags", "build.sh")
WORK = os.path.abspath("flags_work")
NPM = os.path.abspath("flags_npm")  # kept between runs: npm ci only when the lock changes
SIZE = 24
failures = 0


def check(ok, what):
    global failures
    if not ok:
        failures += 1
        print(f"FAIL: {what}")
    return ok


def run_build(out, *extra):
    r = subprocess.run([BUILD_SH, "--out", out, "--npm-dir", NPM, "--image-size", str(SIZE), "--quick", *extra],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        sys.exit(f"FAIL: build.sh exited {r.returncode}")
    return r.stdout


def tree(root):
    """relative path -> (bytes digest, mtime_ns) of every output file (npm excluded)."""
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != "npm"]
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = (hashlib.sha256(fh.read()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


def load(out, name):
    with open(os.path.join(out, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[25]


REQUIRED = {
    "image_text.jsonl": ("image", "text", "key"),
    "kg.jsonl": ("subject", "relation", "object", "key"),
    "text.jsonl": ("title", "text", "key"),
    "qa.jsonl": ("question", "answer", "key"),
    "vqa_train.jsonl": ("id", "image", "question", "answer", "type", "country", "gold_source", "gold_key"),
    "vqa_dev.jsonl": ("id", "image", "question", "answer", "type", "country", "gold_source", "gold_key"),
    "caption_train.jsonl": ("image", "caption", "country", "gold_source", "gold_key"),
    "caption_dev.jsonl": ("image", "caption", "country", "gold_source", "gold_key"),
    "facts.jsonl": ("country", "iso2", "relation", "split", "answer"),
}
MEMORY = ("image_text.jsonl", "kg.jsonl", "text.jsonl", "qa.jsonl")


def check_fields(out):
    for name, fields in REQUIRED.items():
        rows = load(out, name)
        check(len(rows) > 0, f"{name}: empty")
        for i, row in enumerate(rows, 1):
            for f in fields:
                check(isinstance(row.get(f), str) and row[f].strip() != "", f"{name}:{i}: field '{f}' missing or empty")
            if "answers" in fields or name.startswith("vqa") or name == "facts.jsonl":
                answers = row.get("answers")
                check(isinstance(answers, list) and answers and all(isinstance(a, str) and a for a in answers)
                      and row["answer"] in answers, f"{name}:{i}: 'answers' must list the answer")
            if "image" in row:
                size = png_size(os.path.join(out, row["image"]))
                check(size == (SIZE, SIZE, 2), f"{name}:{i}: {row['image']} is not a {SIZE}x{SIZE} RGB PNG ({size})")
        if name in MEMORY:
            keys = [r["key"] for r in rows]
            check(len(keys) == len(set(keys)), f"{name}: duplicate keys")


def check_twemoji_dev_only(out):
    def digest(rel):
        with open(os.path.join(out, rel), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    seen_in_training = set()
    for name in MEMORY + ("vqa_train.jsonl", "caption_train.jsonl"):
        for row in load(out, name):
            if "image" in row:
                check("twemoji" not in row["image"], f"{name}: Twemoji image {row['image']} outside dev")
                seen_in_training.add(digest(row["image"]))
    for name in ("vqa_dev.jsonl", "caption_dev.jsonl"):
        for row in load(out, name):
            check(row["image"].startswith("img/twemoji/"), f"{name}: dev image {row['image']} is not Twemoji")
            check(digest(row["image"]) not in seen_in_training, f"{name}: {row['image']} has the pixels of a training image")


def check_split(out):
    train = {(q["country"], q["type"]) for q in load(out, "vqa_train.jsonl")}
    dev = {(q["country"], q["type"]) for q in load(out, "vqa_dev.jsonl")}
    check(len(dev) > 0 and not (train & dev), f"dev facts asked in training: {sorted(train & dev)[:5]}")
    facts = {(f["country"], f["relation"]): f["split"] for f in load(out, "facts.jsonl")}
    check(all(facts.get(k) == "dev" for k in dev) and all(facts.get(k) == "train" for k in train),
          "facts.jsonl split disagrees with the questions")
    types = {q["type"] for q in load(out, "vqa_dev.jsonl")}
    check(len(types) >= 8, f"dev covers only {len(types)} question types")


def check_support(out):
    """Independent of the builder: every accepted answer occurs in an item about the country."""
    text_of = {}
    for name in MEMORY:
        for row in load(out, name):
            country = row["key"].split("|", 1)[0]
            text_of.setdefault(country, []).append(" ".join(v for k, v in row.items() if k not in ("key", "image")).casefold())
    kg = {r["key"]: r for r in load(out, "kg.jsonl")}
    for split in ("train", "dev"):
        for q in load(out, f"vqa_{split}.jsonl"):
            hay = "\n".join(text_of.get(q["country"], []))
            for a in q["answers"]:
                pat = r"(?<![0-9a-z])" + re.escape(a.casefold()) + r"(?![0-9a-z])"
                check(re.search(pat, hay), f"vqa_{split} {q['id']}: answer '{a}' in no knowledge item")
            gold = kg.get(q["gold_key"])
            check(gold is not None and gold["subject"] == q["country"] and q["answer"] in gold["object"],
                  f"vqa_{split} {q['id']}: gold item {q['gold_key']} does not state the answer")


def check_summary(out):
    s = json.load(open(os.path.join(out, "summary.json"), encoding="utf-8"))
    for name in MEMORY:
        check(s["items"][name[:-6]] == len(load(out, name)), f"summary items {name} wrong")
    for split in ("train", "dev"):
        rows = load(out, f"vqa_{split}.jsonl")
        check(s["questions"][split]["total"] == len(rows), f"summary questions {split} wrong")
        for t, n in s["questions"][split].items():
            if t != "total":
                check(n == sum(q["type"] == t for q in rows), f"summary {split} {t} count wrong")
    countries = {r["country"] for r in load(out, "vqa_dev.jsonl")}
    check(s["countries"] == len(countries) and s["renditions"]["twemoji"] == s["countries"],
          "summary country count wrong")


def check_drop_counts():
    """The support check itself: an answer found in no item drops the question and counts it."""
    sys.path.insert(0, os.path.join(SRC, "tools", "flags"))
    import build
    fact = build.Fact("NP", "Nepal", "capital", [("world-countries", ["Kathmandu"]), ("wordnet", ["Katmandu"])])
    fact.split = "dev"
    counters = {"dropped": {"train": {}, "dev": {}}}
    found = {"NP": {"twemoji": "x", "iso-flags": "y"}}
    profiles = {"NP": {"flag": ""}}
    vqa, _ = build.task_data(["NP"], found, profiles, None, [fact], {"Nepal": "capital kathmandu"}, counters)
    check(vqa["dev"] == [] and counters["dropped"]["dev"] == {"capital": 1}, "unsupported question not dropped")
    counters = {"dropped": {"train": {}, "dev": {}}}
    vqa, _ = build.task_data(["NP"], found, profiles, None, [fact], {"Nepal": "kathmandu or katmandu"}, counters)
    check(len(vqa["dev"]) == 1 and counters["dropped"]["dev"] == {}, "supported question dropped")


def check_bad_arguments():
    r = subprocess.run([BUILD_SH, "--image-size", "big"], capture_output=True, text=True)
    check(r.returncode == 2 and "--image-size 'big' is not a number" in r.stderr, "bad --image-size accepted")
    r = subprocess.run([BUILD_SH, "--frobnicate"], capture_output=True, text=True)
    check(r.returncode == 2 and "unknown argument '--frobnicate'" in r.stderr, "unknown argument accepted")
    r = subprocess.run([sys.executable, os.path.join(SRC, "tools", "flags", "build.py"), "--npm", NPM + "/node_modules",
                        "--out", os.path.join(WORK, "tiny"), "--image-size", "4"], capture_output=True, text=True)
    check(r.returncode == 2 and "must be between 8 and 1024" in r.stderr, "--image-size 4 accepted")
    r = subprocess.run([sys.executable, os.path.join(SRC, "tools", "flags", "build.py"), "--npm",
                        os.path.join(WORK, "no_such_dir"), "--out", os.path.join(WORK, "none")], capture_output=True, text=True)
    check(r.returncode == 1 and "missing" in r.stderr and "package.json" in r.stderr, "missing npm packages not reported")


def check_baseline(out):
    """tools/flags/nn_baseline.py runs on the build and accounts for every dev question."""
    table = os.path.join(WORK, "nn.json")
    r = subprocess.run([sys.executable, os.path.join(SRC, "tools", "flags", "nn_baseline.py"), "--data", out,
                        "--json", table], capture_output=True, text=True)
    if not check(r.returncode == 0, f"nn_baseline failed: {r.stderr.strip()}"):
        return
    result = json.load(open(table, encoding="utf-8"))
    dev = load(out, "vqa_dev.jsonl")
    check(result["dev_questions"] == len(dev) and sum(t["questions"] for t in result["per_type"].values()) == len(dev),
          "nn_baseline did not score every dev question")
    check(result["country_recognition"]["images"] == len({q["image"] for q in dev}), "nn_baseline image count wrong")
    check(0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["prior_accuracy"] <= 1.0, "nn_baseline accuracy out of range")


def check_ingest(out):
    """The four sources pass `reveal ingest --dry-run --max-errors 0` (every line and image
    valid). Skipped, and said so, while the reveal binary has no ingest subcommand."""
    reveal = os.environ.get("REVEAL_BIN", "")
    probe = subprocess.run([reveal, "ingest", "--help"], capture_output=True) if os.path.exists(reveal) else None
    if probe is None or probe.returncode != 0:
        print("flags_build: ingest check skipped (no `reveal ingest` in this build)")
        return
    for kind, name in (("image-text", "image_text"), ("kg", "kg"), ("text", "text"), ("qa", "qa")):
        r = subprocess.run([reveal, "ingest", "--type", kind, "--input", os.path.join(out, name + ".jsonl"),
                            "--store", os.path.join(WORK, "store_" + name), "--image-size", str(SIZE),
                            "--dry-run", "--max-errors", "0", "--quiet"], capture_output=True, text=True)
        check(r.returncode == 0, f"reveal ingest rejects {name}.jsonl: {r.stderr.strip()[:300]}")


def check_counterfactual(out):
    """tools/flags/counterfactual.py: deterministic per seed; edits only training facts; every
    item stating an edited fact is rewritten (no item of the country still states an old
    answer that is not also a new one); the new answers are stated by the edited memory;
    revert files restore the originals; image paths resolve from where they are written."""
    tool = os.path.join(SRC, "tools", "flags", "counterfactual.py")

    def run(seed, target, *extra):
        r = subprocess.run([sys.executable, tool, "--data", out, "--out", target, "--seed", str(seed), *extra],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"counterfactual --seed {seed} failed: {r.stderr.strip()}")
        return tree(target)

    c1, c1_again, c2 = (os.path.join(WORK, n) for n in ("cf1", "cf1_again", "cf2"))
    first = {k: v[0] for k, v in run(1, c1).items()}
    check(first == {k: v[0] for k, v in run(1, c1_again).items()}, "counterfactual: same seed, different bytes")
    check(first != {k: v[0] for k, v in run(2, c2).items()}, "counterfactual: seeds 1 and 2 give the same edits")

    facts = {(f["country"], f["relation"]): f for f in load(out, "facts.jsonl")}
    originals = {s: {r["key"]: r for r in load(out, s + ".jsonl")} for s in ("kg", "qa", "text")}
    check_round(out, c1, facts, originals)
    check(all(e["from_country"] != "(invented)" for e in load(c1, "edits.jsonl")),
          "counterfactual: a statement was invented without --invent")

    # --invent: open-vocabulary facts get statements made of runs the memory holds
    c3 = os.path.join(WORK, "cf3")
    run(3, c3, "--invent", "0.5")
    check_round(out, c3, facts, originals)
    edits = load(c3, "edits.jsonl")
    invented = [e for e in edits if e["from_country"] == "(invented)"]
    check(len(invented) > 0, "counterfactual --invent 0.5: nothing invented")
    def distinct_share(relation):
        pool = [f for f in facts.values() if f["relation"] == relation and f["split"] == "train" and f["supported"]]
        return len({f["answer"].casefold() for f in pool}) / len(pool)
    closed = {r for r in {e["relation"] for e in edits} if distinct_share(r) < 0.3}
    check(closed, "counterfactual: the quick data have no closed-set relation to check")
    check(not [e for e in invented if e["relation"] in closed], "counterfactual: invented a closed-set answer")
    memory = "\n".join(str(r) for s in originals.values() for r in s.values())
    for e in invented:
        for run_ in re.findall(r"\d+|[^\W\d_]+", e["answer_after"]):
            check(run_ in memory, f"counterfactual: invented '{e['answer_after']}' has '{run_}', not in memory")
    r = subprocess.run([sys.executable, tool, "--data", out, "--out", c3, "--seed", "3", "--invent", "2"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "--invent" in r.stderr, "counterfactual --invent 2 was not refused")


def check_round(out, c1, facts, originals):
    """One written round: revert files, image paths, every stating item rewritten, answers."""
    edits = load(c1, "edits.jsonl")
    check(len(edits) > 0, "counterfactual: nothing edited")
    edited = {s: {r["key"]: r for r in load(c1, s + ".jsonl")} for s in ("kg", "qa", "text")}
    for s in ("kg", "qa", "text"):
        revert = load(os.path.join(c1, "revert"), s + ".jsonl")
        check([r["key"] for r in revert] == list(edited[s]), f"counterfactual: revert/{s}.jsonl keys differ")
        for r in revert:
            orig = dict(originals[s][r["key"]])
            back = dict(r)
            if "image" in back:
                check(os.path.normpath(os.path.join(c1, "revert", back.pop("image"))) ==
                      os.path.normpath(os.path.join(out, orig.pop("image"))), f"revert {r['key']}: image path")
            check(back == orig, f"counterfactual: revert/{s}.jsonl {r['key']} is not the original")
        for r in edited[s].values():
            check(os.path.isfile(os.path.join(c1, r.get("image", "."))), f"counterfactual {s} {r['key']}: image missing")
    questions = {(q["country"], q["type"]): q for q in load(c1, "vqa_train.jsonl")}
    for e in edits:
        fact = facts[(e["country"], e["relation"])]
        check(fact["split"] == "train", f"counterfactual edited dev fact {e['country']} {e['relation']}")
        stated = []
        for item in fact["items"]:
            new = edited[item["source"]].get(item["key"])
            if not check(new is not None, f"counterfactual: {item['key']} ({item['source']}) states "
                         f"{e['country']} {e['relation']} but was not rewritten"):
                continue
            # The fields that state the fact; subjects, questions and titles name the country,
            # which can be an answer too (Luxembourg's capital is Luxembourg).
            stated.append(new[{"kg": "object", "qa": "answer", "text": "text"}[item["source"]]])
        text = "\n".join(stated)
        gone = [a for a in e["answers_before"] if a.casefold() not in {b.casefold() for b in e["answers_after"]}]
        for a in gone:
            check(not re.search(r"(?<![0-9A-Za-z])" + re.escape(a) + r"(?![0-9A-Za-z])", text, re.I),
                  f"counterfactual {e['country']} {e['relation']}: old answer '{a}' still stated")
        check(e["answer_after"] in e["answers_after"] and e["answers_after"], f"counterfactual {e['country']}: answers")
        q = questions.get((e["country"], e["relation"]))
        check(q is not None and q["answer"] == e["answer_after"] and q["answers"] == e["answers_after"],
              f"counterfactual {e['country']} {e['relation']}: training question not edited")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    a, b = os.path.join(WORK, "a"), os.path.join(WORK, "b")
    print(run_build(a), end="")
    run_build(b)
    first, second = tree(a), tree(b)
    check(first.keys() == second.keys(), f"runs wrote different files: {sorted(first.keys() ^ second.keys())[:5]}")
    differing = [k for k in first if k in second and first[k][0] != second[k][0]]
    check(not differing, f"two runs differ in bytes: {differing[:5]}")
    again = run_build(a)
    check("(0 rendered now)" in again, "re-run rendered images again")
    check(tree(a) == first, "re-run rewrote files whose bytes were right")

    check_fields(a)
    check_twemoji_dev_only(a)
    check_split(a)
    check_support(a)
    check_summary(a)
    check_drop_counts()
    check_bad_arguments()
    check_baseline(a)
    check_counterfactual(a)
    check_ingest(a)
    if failures:
        print(f"flags_build: {failures} check(s) failed")
        return 1
    print("flags_build: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
