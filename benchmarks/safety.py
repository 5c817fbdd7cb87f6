"""Content-safety severity: the level ``earmark.core.severity`` gives each labelled sentence.

- ``data/safety_severity.jsonl`` (dev, 63 sentences: 7 categories x low / medium / high x 3):
  the cue lists were written against it;
- ``data/safety_severity_test.jsonl`` (test, 63 sentences, the same design): written and
  committed before the cues, never used to change them. Its figures are the ones to quote.

Per split: level accuracy (chance is 1/3), with a 90 % bootstrap interval; ordering, the
share of same-category pairs at different levels whose severity numbers are in the right
order (a tie is wrong); the confusion of levels; and with ``--detection`` (loads the tagger),
how many sentences the tagger flags with their category, and the level accuracy of those.
Severity is graded given the category, so the first figures use the labelled category.

    python benchmarks/safety.py [--detection] [--show] [--split dev|test|both]
"""

from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path

import numpy as np
from _common import print_table, write_json

from earmark.core.severity import HIGH, LOW, MEDIUM, level_of, severity

DATA = Path(__file__).resolve().parent / "data"
SPLITS = {"dev": DATA / "safety_severity.jsonl", "test": DATA / "safety_severity_test.jsonl"}
LEVELS = (LOW, MEDIUM, HIGH)


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def interval(hits: np.ndarray, rounds: int = 2000) -> str:
    rng = np.random.default_rng(0)
    means = [hits[rng.integers(0, len(hits), len(hits))].mean() for _ in range(rounds)]
    return f"{np.percentile(means, 5):.2f}-{np.percentile(means, 95):.2f}"


def ordering(items: list[dict], scores: list[float]) -> tuple[int, int]:
    right = total = 0
    for (a, sa), (b, sb) in combinations(zip(items, scores, strict=True), 2):
        if a["label"] != b["label"] or a["severity"] == b["severity"]:
            continue
        total += 1
        lower_first = LEVELS.index(a["severity"]) < LEVELS.index(b["severity"])
        right += (sa < sb) if lower_first else (sb < sa)
    return right, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detection", action="store_true", help="also run the tagger's categories")
    ap.add_argument("--show", action="store_true", help="print every sentence graded wrong")
    ap.add_argument("--split", choices=[*SPLITS, "both"], default="both")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    worker = None
    if args.detection:
        from earmark.inference.tagger import TagModel, TagWorker
        worker = TagWorker(TagModel())
    rows, confusion = [], {}
    for split, path in SPLITS.items():
        if args.split not in (split, "both"):
            continue
        items = load(path)
        scores = [severity(it["label"], it["text"]) for it in items]
        hits = np.array([level_of(s) == it["severity"] for s, it in zip(scores, items,
                                                                        strict=True)])
        right, total = ordering(items, scores)
        row = {"split": split, "sentences": len(items), "level_accuracy": round(hits.mean(), 3),
               "accuracy_90": interval(hits), "ordering": round(right / total, 3),
               "pairs": total}
        table = {gold: {guess: 0 for guess in LEVELS} for gold in LEVELS}
        for s, it in zip(scores, items, strict=True):
            table[it["severity"]][level_of(s)] += 1
            if args.show and level_of(s) != it["severity"]:
                print(f"[{split}] {it['label']} {it['severity']} -> {level_of(s)}: {it['text']}")
        confusion[split] = table
        if worker is not None:
            flagged = [{s.label for s in worker.content_safety(it["text"]).result()}
                       for it in items]
            seen = [k for k, f in enumerate(flagged) if items[k]["label"] in f]
            row["flagged_with_category"] = len(seen)
            row["level_accuracy_flagged"] = round(float(np.mean([hits[k] for k in seen])), 3) \
                if seen else None
        rows.append(row)
    if worker is not None:
        worker.close()
    print("content-safety severity, graded given the labelled category")
    columns = ["split", "sentences", "level_accuracy", "accuracy_90", "ordering", "pairs"]
    if args.detection:
        columns += ["flagged_with_category", "level_accuracy_flagged"]
    print_table(rows, columns)
    for split, table in confusion.items():
        print(f"{split} confusion (gold -> graded): " + "; ".join(
            f"{gold}: " + " ".join(f"{g[0]}{n}" for g, n in guesses.items())
            for gold, guesses in table.items()))
    write_json("safety", {"rows": rows, "confusion": confusion}, args.out)


if __name__ == "__main__":
    main()
