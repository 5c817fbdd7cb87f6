"""Content-safety categories on the labelled set ``benchmarks/data/safety_dev.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from earmark.inference.tagger import TagModel, TagWorker

SET = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "safety_dev.jsonl"


@pytest.fixture(scope="module")
def worker():
    w = TagWorker(TagModel())
    yield w
    w.close()


def test_precision_and_recall_on_the_labelled_set(worker) -> None:
    tp = fp = fn = 0
    for line in SET.read_text().splitlines():
        item = json.loads(line)
        found = {s.label for s in worker.content_safety(item["text"]).result()}
        gold = set(item["labels"])
        tp += len(found & gold)
        fp += len(found - gold)
        fn += len(gold - found)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.9 and recall >= 0.8, (precision, recall)


def test_everyday_talk_is_clean(worker) -> None:
    assert worker.content_safety("Let's meet for lunch at noon near the library.").result() == []
