"""Rolling tags re-score mostly the same sentences: the sentence cache must give the model's
own vectors, stay bounded, and leave the scores as they were."""

from __future__ import annotations

import numpy as np
import pytest

from earmark.inference import tagger
from earmark.inference.tagger import TagModel, load_catalogue

SENTENCES = ["The striker scored twice in the second half.",
             "Our quarterly revenue grew by twelve percent.",
             "Knead the dough and let it rise for an hour."]


@pytest.fixture(scope="module")
def model() -> TagModel:
    return TagModel()


def test_cached_vectors_are_the_models_own(model: TagModel) -> None:
    direct = model.embed(SENTENCES)
    first = model.embed_cached(SENTENCES)
    again = model.embed_cached([SENTENCES[2], SENTENCES[0], SENTENCES[2]])
    np.testing.assert_allclose(first, direct, atol=1e-5)
    np.testing.assert_allclose(again, direct[[2, 0, 2]], atol=1e-5)


def test_the_cache_is_bounded(model: TagModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tagger, "SENTENCE_CACHE", 2)
    out = model.embed_cached(SENTENCES)  # more than the cache holds in one call
    assert out.shape == (3, direct_dim(model)) and len(model._sentences) == 2
    assert list(model._sentences) == SENTENCES[1:]  # least recently used went first


def test_a_window_scores_the_same_with_its_sentences_cached(model: TagModel) -> None:
    window = " ".join(SENTENCES)
    catalogue = load_catalogue()
    model._sentences.clear()
    cold = model.score(catalogue, window, "sports talk")
    warm = model.score(catalogue, window, "sports talk")
    assert [t.name for t in cold.topics] == [t.name for t in warm.topics]
    for a, b in zip(cold.topics + cold.moods, warm.topics + warm.moods, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-3)


def direct_dim(model: TagModel) -> int:
    return int(model.embed(["x"]).shape[1])
