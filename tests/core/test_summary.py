"""Extractive summary picks: central, not redundant, in speaking order."""

from __future__ import annotations

import numpy as np

from earmark.core.summary import pick_sentences, summary_size


def unit(*rows: list[float]) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_picks_are_central_and_diverse_in_order() -> None:
    v = unit([1, 0, 0], [0.98, 0.2, 0], [0.97, 0.1, 0.1], [0, 1, 0], [0.6, 0.8, 0], [0, 0, 1])
    picks = pick_sentences(v, 2)
    assert len(picks) == 2 and picks == sorted(picks)
    assert not {0, 1} <= set(picks)  # two near-duplicates are never both picked


def test_short_sentences_are_skipped_and_sizes() -> None:
    v = unit([1, 0], [0.9, 0.1], [0, 1])
    assert pick_sentences(v, 1, min_words=[2, 10, 10]) in ([1], [2])
    assert pick_sentences(v[:0], 3) == []
    assert [summary_size(n) for n in (1, 8, 24, 200)] == [1, 1, 3, 5]


def test_chapter_breaks_at_the_topic_change_only() -> None:
    from earmark.core.summary import chapter_breaks

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    topic = [a + 0.3 * rng.normal(size=16) for _ in range(6)] + \
        [b + 0.3 * rng.normal(size=16) for _ in range(6)]
    v = unit(*[list(x) for x in topic])
    assert chapter_breaks(v, threshold=0.5) == [6]
    same = unit(*[list(a + 0.3 * rng.normal(size=16)) for _ in range(12)])
    assert chapter_breaks(same, threshold=0.5) == []
    assert chapter_breaks(v[:5]) == []  # too short to split


def test_story_so_far_rejoins_sentences_split_across_segments():
    from earmark.core.events import Word
    from earmark.core.story import StorySoFar

    def w(text: str, at: float) -> Word:
        return Word(text, int(at * 16000), int((at + 0.3) * 16000), 0.9)

    story = StorySoFar(max_words=6)
    story.add([w("The", 0.0), w("match", 0.4)])  # first 5 s segment ends mid-sentence
    story.add([w("ended.", 0.8), w("Fans", 1.2), w("cheered.", 1.6)])
    assert [m.text for m in story.sentences()] == ["The match ended.", "Fans cheered."]
    story.add([w("Then", 2.0), w("home.", 2.4)])  # over max_words: the oldest roll off
    assert story.sentences()[0].text == "match ended."


def test_summary_and_chapter_spans_of_two_topics():
    from earmark.core.summary import chapter_spans, summary_of

    a, b = np.eye(8, dtype=np.float32)[0], np.eye(8, dtype=np.float32)[1]
    vectors = np.stack([a] * 6 + [b] * 6)
    texts = [f"sentence number {i} is long enough" for i in range(12)]
    assert chapter_spans(vectors) == [(0, 6), (6, 12)]
    assert chapter_spans(vectors[:0]) == []
    assert summary_of(texts, vectors).startswith("sentence number")
