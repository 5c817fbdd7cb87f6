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
