"""Scores redaction on the labelled PII set (``benchmarks/data/pii_dev.jsonl``): shared by the
test and ``benchmarks/understanding.py``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from earmark.core.events import Word
from earmark.core.text_options import LABELS

PII_SET = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "pii_dev.jsonl"


def words_of(text: str) -> list[Word]:
    """Transcript-like words, 0.3 s each."""
    return [Word(" " + tok, i * 4800, i * 4800 + 4000, 0.9) for i, tok in enumerate(text.split())]


def score(redactor: Callable[[Sequence[Word]], Sequence[Word]],
          path: Path = PII_SET) -> dict[str, dict[str, float]]:
    """Per kind: recall (every word of the span became its label) and false alarms on the
    set's sentences without PII."""
    hits: dict[str, list[int]] = {}
    false_alarms = negatives = 0
    for line in path.read_text().splitlines():
        item = json.loads(line)
        words = words_of(item["text"])
        out = redactor(words)
        redacted = " ".join(w.text.strip() for w in out)
        if not item["spans"]:
            negatives += 1
            false_alarms += "[" in redacted
            continue
        for span in item["spans"]:
            label = f"[{LABELS[span['kind']]}]"
            value = item["text"][span["start"]:span["end"]]
            rest = (item["text"][:span["start"]] + " " + item["text"][span["end"]:]).split()
            said = redacted.split()
            found = label in redacted and all(said.count(tok) <= rest.count(tok)
                                              for tok in value.split())
            hits.setdefault(span["kind"], []).append(int(found))
    out: dict[str, dict[str, float]] = {k: {"recall": sum(v) / len(v), "n": len(v)}
                                        for k, v in sorted(hits.items())}
    out["negatives"] = {"false_alarm_rate": false_alarms / max(1, negatives), "n": negatives}
    return out
