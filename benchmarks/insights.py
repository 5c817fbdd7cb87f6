"""Insights (seed 003's questions, action items and follow-ups): precision and recall of the
rules in ``earmark.core.insights`` on labelled sentences written for this project.

- ``data/insights.jsonl`` (dev, 90 sentences): the rules and their scores were written
  against it;
- ``data/insights_test.jsonl`` (test, 50 sentences): written before the rules were run on it,
  and never used to change them. Its figures are the ones to quote.

Per kind: precision, recall and F1 over sentences (a sentence can be both a question and an
action), with 90 % bootstrap intervals. Text only: spoken through the file-job path, the
punctuation Whisper gives is what the question rule reads.

    python benchmarks/insights.py [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import print_table, write_json

from earmark.core.insights import ACTION_ITEM, FOLLOW_UP, QUESTION, find

DATA = Path(__file__).resolve().parent / "data"
SPLITS = {"dev": DATA / "insights.jsonl", "test": DATA / "insights_test.jsonl"}
KINDS = (QUESTION, ACTION_ITEM, FOLLOW_UP)


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def counts(items: list[dict], threshold: float) -> dict[str, np.ndarray]:
    """Per kind, per sentence: (true positive, false positive, false negative)."""
    found = find([it["text"] for it in items], threshold)
    said = {(i.message, i.kind) for i in found}
    out = {}
    for kind in KINDS:
        rows = []
        for k, it in enumerate(items):
            truth, guess = kind in it["labels"], (k, kind) in said
            rows.append((truth and guess, guess and not truth, truth and not guess))
        out[kind] = np.array(rows, dtype=float)
    return out


def prf(rows: np.ndarray) -> tuple[float, float, float]:
    tp, fp, fn = rows.sum(axis=0)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def interval(rows: np.ndarray, which: int, rounds: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    values = [prf(rows[rng.integers(0, len(rows), len(rows))])[which] for _ in range(rounds)]
    return float(np.percentile(values, 5)), float(np.percentile(values, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--show", action="store_true", help="print every wrong sentence")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    for split, path in SPLITS.items():
        items = load(path)
        per_kind = counts(items, args.threshold)
        for kind, table in per_kind.items():
            p, r, f = prf(table)
            (plo, phi), (rlo, rhi) = interval(table, 0), interval(table, 1)
            rows.append({"split": split, "sentences": len(items), "kind": kind,
                         "labelled": int(table[:, 0].sum() + table[:, 2].sum()),
                         "precision": round(p, 3), "precision_90": f"{plo:.2f}-{phi:.2f}",
                         "recall": round(r, 3), "recall_90": f"{rlo:.2f}-{rhi:.2f}",
                         "f1": round(f, 3)})
            if args.show:
                for k, (_tp, fp, fn) in enumerate(table):
                    if fp or fn:
                        print(f"[{split} {kind}] {'extra' if fp else 'missed'}: "
                              f"{items[k]['text']}")
    print(f"insights rules, threshold {args.threshold}")
    print_table(rows, ["split", "sentences", "kind", "labelled", "precision", "precision_90",
                       "recall", "recall_90", "f1"])
    write_json("insights", {"threshold": args.threshold, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
