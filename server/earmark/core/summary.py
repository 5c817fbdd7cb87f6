"""Extractive summaries, pure: pick the sentences that best represent a conversation.

Sentences come with unit-length embedding vectors. Each pick maximises centrality (similarity
to the mean of all sentences) minus redundancy with what was already picked (maximal marginal
relevance), and the picks are returned in speaking order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def summary_size(sentences: int) -> int:
    """About one sentence in eight, between 1 and 5."""
    return max(1, min(5, round(sentences / 8)))


def pick_sentences(vectors: npt.NDArray[np.float32], k: int, *,
                   diversity: float = 0.5, min_words: list[int] | None = None) -> list[int]:
    """Indices of ``k`` representative rows of ``vectors`` (unit rows), in order.

    Args:
        vectors: one unit-length embedding per sentence.
        k: how many to pick (fewer if there are fewer sentences).
        diversity: 0 = centrality only, 1 = novelty only.
        min_words: words per sentence; sentences under 4 words are never picked.
    """
    n = len(vectors)
    if n == 0 or k <= 0:
        return []
    centroid = vectors.mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    central = vectors @ (centroid / norm) if norm > 0 else np.zeros(n, dtype=np.float32)
    allowed = [i for i in range(n) if min_words is None or min_words[i] >= 4] or list(range(n))
    picked: list[int] = []
    while len(picked) < min(k, len(allowed)):
        best, best_score = -1, -np.inf
        for i in allowed:
            if i in picked:
                continue
            redundancy = max((float(vectors[i] @ vectors[j]) for j in picked), default=0.0)
            score = (1 - diversity) * float(central[i]) - diversity * redundancy
            if score > best_score:
                best, best_score = i, score
        picked.append(best)
    return sorted(picked)


def chapter_breaks(vectors: npt.NDArray[np.float32], *, window: int = 3,
                   min_sentences: int = 4, threshold: float = 0.8) -> list[int]:
    """Indices where a new chapter starts (TextTiling on sentence embeddings).

    The gap before sentence ``i`` scores how unlike the ``window`` sentences before it are to
    the ``window`` after (1 - cosine of their means). Chapters start at the highest-scoring
    gaps of at least ``threshold`` (MiniLM: 0.5-0.7 inside a topic, 0.8-0.95 between topics),
    at least ``min_sentences`` apart and from either end; a boundary may land one sentence off.
    """
    n = len(vectors)
    if n < 2 * min_sentences:
        return []
    depth = np.zeros(n, dtype=np.float64)
    for i in range(1, n):
        before = vectors[max(0, i - window):i].mean(axis=0)
        after = vectors[i:i + window].mean(axis=0)
        norm = float(np.linalg.norm(before) * np.linalg.norm(after))
        depth[i] = 1.0 - (float(before @ after) / norm if norm > 0 else 0.0)
    breaks: list[int] = []
    for i in sorted(range(min_sentences, n - min_sentences + 1), key=lambda k: -depth[k]):
        if depth[i] < threshold:
            break
        if all(abs(i - b) >= min_sentences for b in breaks):
            breaks.append(i)
    return sorted(breaks)


def summary_of(texts: list[str], vectors: npt.NDArray[np.float32]) -> str:
    """The extractive summary as one string: the picked sentences in speaking order."""
    return " ".join(texts[i] for i in summary_picks(texts, vectors))


def chapter_spans(vectors: npt.NDArray[np.float32]) -> list[tuple[int, int]]:
    """[start, end) sentence ranges of the chapters (one chapter when no break is found)."""
    if len(vectors) == 0:
        return []
    starts = [0, *chapter_breaks(vectors), len(vectors)]
    return list(zip(starts, starts[1:], strict=False))


# Every summary Earmark gives is picked here, whichever API asks (the socket's Summary, seed
# 003's summary and chapters, seed 004's summary types and chapters, /v1/listen's summary).
def headline_index(texts: list[str], vectors: npt.NDArray[np.float32]) -> int:
    """The most representative sentence (the socket's ``short``, a chapter's gist)."""
    return pick_sentences(vectors, 1, min_words=[len(t.split()) for t in texts])[0]


def summary_picks(texts: list[str], vectors: npt.NDArray[np.float32], *,
                  verbose: bool = False) -> list[int]:
    """The summary's sentences, in speaking order; ``verbose``: twice as many (AssemblyAI's
    ``bullets_verbose``)."""
    size = summary_size(len(texts))
    if verbose:
        size = min(len(texts), 2 * size)
    return pick_sentences(vectors, size, min_words=[len(t.split()) for t in texts])


def chapters_of(texts: list[str], vectors: npt.NDArray[np.float32]
                ) -> list[tuple[int, int, int]]:
    """Each chapter's [start, end) sentences and the index of its headline sentence."""
    return [(a, b, a + headline_index(texts[a:b], vectors[a:b]))
            for a, b in chapter_spans(vectors)]
