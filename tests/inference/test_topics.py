"""IAB categories and custom topics with the real sentence model: the right tier 1 for clear
passages, nothing for small talk, custom topics through the taxonomy."""

from __future__ import annotations

import pytest

from earmark.inference.tagger import TagModel, TagWorker
from earmark.inference.topics import iab_taxonomy


@pytest.fixture(scope="module")
def worker():
    w = TagWorker(TagModel())
    yield w
    w.close()


def test_the_taxonomy_ships_with_its_tiers() -> None:
    paths = iab_taxonomy()
    assert len(paths) > 600 and ("Sports", "Soccer") in paths and ("Food & Drink",) in paths


@pytest.mark.parametrize(("text", "tier1"), [
    ("The goalkeeper made three great saves and the striker scored in the last minute.",
     "Sports"),
    ("Knead the dough for ten minutes, let it rise, then bake the loaf until golden.",
     "Food & Drink"),
    ("The central bank raised interest rates again and the stock market fell.",
     "Business and Finance"),
])
def test_clear_passages_get_their_tier_one(worker, text, tier1) -> None:
    iab, _ = worker.topics(text).result()
    assert iab and iab[0].label.split(">")[0] == tier1, iab
    assert all(0 < t.relevance <= 1 for t in iab)
    assert [t.relevance for t in iab] == sorted((t.relevance for t in iab), reverse=True)


def test_small_talk_gets_no_label(worker) -> None:
    assert worker.topics("Okay, yeah, right, sure.", ("sport", "cooking")).result() == ((), ())


def test_custom_topics_are_reported_when_the_talk_is_about_them(worker) -> None:
    topics = ("football", "baking bread", "interest rates")
    _, sport = worker.topics("The goalkeeper made three great saves in the second half.",
                             topics).result()
    assert [t.label for t in sport] == ["football"]
    _, bread = worker.topics("Knead the dough for ten minutes until it feels smooth.",
                             topics).result()
    assert [t.label for t in bread] == ["baking bread"]
