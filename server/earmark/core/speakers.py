"""Speaker labels for a live stream that stay the same for the whole stream.

Pure and synchronous (numpy only): the embeddings come from the speaker model and the
clustering is injected, both run on a worker thread; this class keeps the stream's history
and decides the labels.

Each final's window embeddings join the history, the whole history is clustered again, and
the new clusters are matched to the labels the history already has (greatest overlap
first), so a speaker keeps the label it was first given while later audio sharpens the
clusters. Labels already sent never change. Interims are labelled by the nearest speaker
centroid and teach nothing. Clustering every window of a long stream would grow without
bound, so the history keeps the last ``keep_recent`` windows whole and every second one of
those before, up to ``max_history``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Clusterer = Callable[[Vectors], npt.NDArray[np.int64]]


class LiveSpeakers:
    def __init__(self, cluster: Clusterer, *, max_speakers: int | None = None,
                 max_history: int = 400) -> None:
        self.cluster = cluster  # vectors -> 0-based cluster per vector
        self.max_speakers = max_speakers  # past it, a new cluster is the nearest known voice
        self.max_history = max_history
        self._vectors: Vectors = np.zeros((0, 0), np.float32)
        self._labels: npt.NDArray[np.int64] = np.zeros(0, np.int64)

    @property
    def speakers(self) -> int:
        return len(np.unique(self._labels))

    def receive(self, vectors: Vectors, *, learn: bool = True) -> list[int]:
        """Labels (0-based, in order of first appearance) for one utterance's windows."""
        v = np.asarray(vectors, dtype=np.float32)
        if not len(v):
            return []
        if not learn:
            return self._nearest(v)
        every = v if not len(self._labels) else np.concatenate([self._vectors, v])
        raw = np.asarray(self.cluster(every), dtype=np.int64)
        mapping = _match(raw[: len(self._labels)], self._labels)
        next_label = int(self._labels.max()) + 1 if len(self._labels) else 0
        fresh = raw[len(self._labels):]
        new: list[int] = []
        for cluster in fresh.tolist():
            if cluster not in mapping:
                if self.max_speakers is not None and next_label >= self.max_speakers:
                    members = v[fresh == cluster]
                    mapping[cluster] = self._nearest(members.mean(axis=0, keepdims=True))[0]
                else:
                    mapping[cluster] = next_label
                    next_label += 1
            new.append(mapping[cluster])
        self._vectors = every
        self._labels = np.concatenate([self._labels, np.array(new, np.int64)])
        self._thin()
        return new

    def _nearest(self, v: Vectors) -> list[int]:
        if not len(self._labels):
            return [0] * len(v)
        names = np.unique(self._labels)
        centres = np.stack([self._vectors[self._labels == n].mean(axis=0) for n in names])
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
        return [int(names[i]) for i in np.argmax(v @ centres.T, axis=1)]

    def _thin(self) -> None:
        if len(self._labels) <= self.max_history:
            return
        keep_recent = self.max_history // 2
        old = np.arange(len(self._labels) - keep_recent)[::2]
        kept = np.concatenate([old, np.arange(len(self._labels) - keep_recent,
                                              len(self._labels))])
        self._vectors, self._labels = self._vectors[kept], self._labels[kept]


def _match(raw: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]) -> dict[int, int]:
    """Cluster -> existing label, one to one, greatest number of shared windows first."""
    if not len(labels):
        return {}
    pairs: dict[tuple[int, int], int] = {}
    for a, b in zip(raw.tolist(), labels.tolist(), strict=True):
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
    mapping: dict[int, int] = {}
    taken: set[int] = set()
    for (a, b), _ in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
        if a not in mapping and b not in taken:
            mapping[a] = b
            taken.add(b)
    return mapping


def label_at(centres: npt.NDArray[np.int64], labels: list[int], sample: int) -> int | None:
    """The label of the window centred nearest ``sample``."""
    if not len(centres):
        return None
    i = int(np.searchsorted(centres, sample))
    if i == len(centres) or (i > 0 and sample - centres[i - 1] < centres[i] - sample):
        i -= 1
    return labels[i]
