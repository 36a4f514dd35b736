"""Pixel nearest-neighbour baseline for the flags VQA dev set (docs/data.md).

Recognise the country of each dev (Twemoji) flag by the nearest training rendition in raw
pixel space (L2 distance over the N×N×3 image, values in [0, 1]), then answer by looking the fact up: the first source's answer for
(recognised country, question type) in facts.jsonl. An answer is correct when it equals one
of the question's accepted answers, ignoring case. This is what a model that only recognises
flags and memorised every fact would score; a retrieval model must beat it to show that
reading memory adds something beyond recognition. Beside it, the question-only prior: the
most frequent training answer of each question type (what needs neither image nor memory).

    /usr/bin/python3 tools/flags/nn_baseline.py [--data data/flags] [--json OUT]
"""

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image


def load_rows(data, name):
    with open(os.path.join(data, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def pixels(data, rel):
    with Image.open(os.path.join(data, rel)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32).reshape(-1) / 255.0  # (N*N*3,)


def main():
    ap = argparse.ArgumentParser(description="pixel nearest-neighbour baseline on the flags dev set")
    ap.add_argument("--data", default="data/flags", help="output directory of tools/flags/build.sh")
    ap.add_argument("--json", help="also write the table as JSON to this file")
    args = ap.parse_args()
    try:
        memory = load_rows(args.data, "image_text.jsonl")
        dev = load_rows(args.data, "vqa_dev.jsonl")
        train_questions = load_rows(args.data, "vqa_train.jsonl")
        facts = load_rows(args.data, "facts.jsonl")
    except (OSError, json.JSONDecodeError) as e:
        print(f"nn_baseline: cannot read the data in {args.data}: {e}", file=sys.stderr)
        return 1

    # Training renditions: the images of the image-text knowledge source, labelled by country.
    train_countries = [row["key"].split("|", 1)[0] for row in memory]
    train = np.stack([pixels(args.data, row["image"]) for row in memory])  # (M, N*N*3)
    answer_of = {(f["country"], f["relation"]): f["answer"] for f in facts}

    counts = {}
    for q in train_questions:
        per = counts.setdefault(q["type"], {})
        per[q["answer"]] = per.get(q["answer"], 0) + 1
    prior = {t: min(per, key=lambda a: (-per[a], a)) for t, per in counts.items()}

    cache = {}
    per_type = {}
    for q in dev:
        if q["image"] not in cache:
            query = pixels(args.data, q["image"])  # (N*N*3,)
            cache[q["image"]] = train_countries[int(np.argmin(((train - query) ** 2).sum(axis=1)))]
        country = cache[q["image"]]
        guess = answer_of.get((country, q["type"]), "")
        accepted = {a.casefold() for a in q["answers"]}
        n, c, p = per_type.get(q["type"], (0, 0, 0))
        per_type[q["type"]] = (n + 1, c + (guess.casefold() in accepted),
                               p + (prior.get(q["type"], "").casefold() in accepted))

    table = {t: dict(questions=n, correct=c, accuracy=round(c / n, 3), prior_answer=prior.get(t, ""),
                     prior_accuracy=round(p / n, 3)) for t, (n, c, p) in sorted(per_type.items())}
    total_n = sum(v[0] for v in per_type.values())
    total_c = sum(v[1] for v in per_type.values())
    total_p = sum(v[2] for v in per_type.values())
    countries = len(cache)
    right_countries = sum(1 for img, c in cache.items()
                          if any(q["image"] == img and q["country"] == c for q in dev))
    result = dict(dev_questions=total_n, accuracy=round(total_c / max(total_n, 1), 3),
                  prior_accuracy=round(total_p / max(total_n, 1), 3),
                  country_recognition=dict(images=countries, correct=right_countries,
                                           accuracy=round(right_countries / max(countries, 1), 3)),
                  per_type=table)
    print(f"pixel nearest neighbour: {countries} dev flags, country recognised for {right_countries} "
          f"({result['country_recognition']['accuracy']:.3f})")
    print(f"{'type':<14} {'questions':>9} {'correct':>8} {'accuracy':>8} {'prior':>6}  prior answer")
    for t, row in table.items():
        print(f"{t:<14} {row['questions']:>9} {row['correct']:>8} {row['accuracy']:>8.3f} "
              f"{row['prior_accuracy']:>6.3f}  {row['prior_answer']}")
    print(f"{'all':<14} {total_n:>9} {total_c:>8} {result['accuracy']:>8.3f} {result['prior_accuracy']:>6.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
