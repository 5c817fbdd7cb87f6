"""IAB categories and custom topics on a labelled set of spoken-style passages.

``benchmarks/data/iab_dev.jsonl``: 49 passages (one to four per IAB tier 1, across 27 tier-1
categories), each labelled with its tier 1 and, where one fits, its tier 2, and 4 of small
talk that should get no label. Reports the share whose best label is in the right tier 1,
whose top three hold it, and whose top three hold the right tier 2; and, for custom topics
given in a user's words, precision and recall of the topics reported. Also the labels given to
small talk and the time per classification.

    python benchmarks/topics.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import print_table, write_json

from earmark.inference.tagger import TagModel
from earmark.inference.topics import TopicModel

DATA = Path(__file__).resolve().parent / "data" / "iab_dev.jsonl"
# Custom topics in a user's words, and the tier-1 categories each stands for.
CUSTOM = {"football and other sports": {"Sports"}, "cooking": {"Food & Drink"},
          "computers and gadgets": {"Technology & Computing", "Video Gaming"},
          "the economy": {"Business and Finance", "Personal Finance"},
          "holidays abroad": {"Travel"}, "illness and doctors": {"Medical Health"},
          "elections and government": {"Politics"}, "dogs and cats": {"Pets"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    model = TopicModel(TagModel().embed)
    model.classify("warm up")
    top1 = top3 = tier2 = with_tier2 = unlabelled = small_talk = 0
    tp = fp = fn = 0
    took = []
    custom = tuple(CUSTOM)
    for row in rows:
        t0 = time.perf_counter()
        iab, mine = model.classify(row["text"], custom)
        took.append(time.perf_counter() - t0)
        paths = [label.label.split(">") for label in iab]
        if row["tier1"] is None:
            small_talk += len(iab) + len(mine)
            continue
        unlabelled += not paths
        top1 += bool(paths) and paths[0][0] == row["tier1"]
        top3 += any(p[0] == row["tier1"] for p in paths[:3])
        if row["tier2"]:
            with_tier2 += 1
            tier2 += any(len(p) > 1 and p[1] == row["tier2"] for p in paths[:3])
        want = {name for name, tiers in CUSTOM.items() if row["tier1"] in tiers}
        got = {label.label for label in mine}
        tp += len(want & got)
        fp += len(got - want)
        fn += len(want - got)
    talk = sum(1 for r in rows if r["tier1"] is None)
    n = len(rows) - talk
    took.sort()
    result = [
        {"metric": "IAB tier 1, best label", "value": f"{top1 / n:.2f}", "of": n},
        {"metric": "IAB tier 1 in the top 3", "value": f"{top3 / n:.2f}", "of": n},
        {"metric": "IAB tier 2 in the top 3", "value": f"{tier2 / with_tier2:.2f}",
         "of": with_tier2},
        {"metric": "passages with no IAB label", "value": str(unlabelled), "of": n},
        {"metric": "labels (IAB or custom) on small talk", "value": str(small_talk),
         "of": talk},
        {"metric": "custom topics precision", "value": f"{tp / max(1, tp + fp):.2f}",
         "of": tp + fp},
        {"metric": "custom topics recall", "value": f"{tp / max(1, tp + fn):.2f}", "of": tp + fn},
        {"metric": "ms per passage p50 / p90",
         "value": f"{1000 * took[len(took) // 2]:.0f} / {1000 * took[int(len(took) * 0.9)]:.0f}",
         "of": len(took)},
    ]
    print_table(result, ["metric", "value", "of"])
    write_json("topics", {"rows": result}, args.out)


if __name__ == "__main__":
    main()
