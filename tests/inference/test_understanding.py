"""Text options with the real models (spaCy, VADER, the profanity list) on labelled text."""

from __future__ import annotations

import pytest

from earmark.core.text_options import TextOptions, redact_kinds
from earmark.inference.understanding import TextModels
from earmark_eval.pii import score, words_of


@pytest.fixture(scope="module")
def models() -> TextModels:
    return TextModels()


def test_pii_recall_on_the_labelled_set(models) -> None:
    options = TextOptions(redact=redact_kinds(["pii"]))
    got = score(lambda words: models.process(words, options).words)
    for kind in ("email", "phone", "card"):
        assert got[kind]["recall"] >= 0.9, got
    assert got["name"]["recall"] >= 0.75, got
    assert got["negatives"]["false_alarm_rate"] <= 0.2, got


def test_without_redaction_nothing_is_redacted(models) -> None:
    words = words_of("Call John Smith on 555 123 4567.")
    assert models.process(words, TextOptions(sentiment=True)).words == tuple(words)


def test_entities_sentiment_and_profanity(models) -> None:
    words = words_of("I love Paris, the damn trains were great and Apple paid me on Monday.")
    done = models.process(words, TextOptions(profanity=True, sentiment=True, entities=True))
    text = " ".join(w.text.strip() for w in done.words)
    assert "d***" in text and "damn" not in text
    assert done.sentiment is not None and done.sentiment.label == "positive"
    labels = {e.label: e.text for e in done.entities}
    assert labels.get("GPE") == "Paris" and labels.get("DATE") == "Monday"
    paris = next(e for e in done.entities if e.label == "GPE")
    assert (paris.start_sample, paris.end_sample) == (2 * 4800, 2 * 4800 + 4000)


def test_redacted_entities_do_not_leak(models) -> None:
    done = models.process(words_of("Maria Garcia lives in Madrid."),
                          TextOptions(redact=redact_kinds(["pii"]), entities=True))
    assert all("Maria" not in e.text for e in done.entities)
    assert "Maria" not in " ".join(w.text for w in done.words)


def test_numerals_turn_spoken_numbers_into_digits(models) -> None:
    words = words_of("I paid nine hundred ninety nine dollars on the twenty first of May "
                     "for one of the two boxes.")
    got = models.process(words, TextOptions(numerals=True)).words
    said = " ".join(w.text.strip() for w in got)
    assert said == "I paid 999 dollars on the 21st of May for one of the two boxes.", said
    assert got[2].start_sample == words[2].start_sample
    assert got[2].end_sample == words[5].end_sample
