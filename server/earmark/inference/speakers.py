"""Who spoke when: d-vector speaker embeddings (Resemblyzer's encoder, shipped in its PyPI
package) over sliding windows of speech, clustered with spectral clustering.

- Windows of 2.4 s every 0.4 s, over speech only (Silero regions); a window is labelled by the
  cluster of its embedding; each word takes the label of the window centred nearest to it.
- The affinity is cosine similarity, refined row by row (each row keeps its strongest 30 %,
  the rest is damped) and symmetrised, as in the "speaker diarization with LSTM" recipe.
- The number of speakers is the caller's (``diarizationSpeakerCount``) or estimated: the
  eigengap of the affinity's normalised Laplacian, at least 2, then fewer while two cluster
  centres are closer than ``SAME_VOICE``. Estimation is the weak part: give the count when
  it is known.

Measured in ``benchmarks/diarization.py``. Loads on first use (about 2 s).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE
from earmark.core.chunking import Chunk

logger = logging.getLogger(__name__)

WINDOW_S = 2.4
HOP_S = 0.4
MIN_WINDOW_S = 0.8  # a region shorter than this gets no window of its own
MEL_FRAMES_PER_S = 100  # Resemblyzer's mel hop is 10 ms
SAME_VOICE = 0.8  # cosine of two cluster centres above which they are merged (count estimated)


@dataclass(frozen=True)
class SpeakerTrack:
    """Window centres (samples) and the speaker (0-based) heard around each."""

    centers: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int64]
    speakers: int

    def speaker_at(self, sample: int) -> int | None:
        if not len(self.centers):
            return None
        i = int(np.searchsorted(self.centers, sample))
        if i == len(self.centers) or (i > 0 and sample - self.centers[i - 1]
                                      < self.centers[i] - sample):
            i -= 1
        return int(self.labels[i])


class SpeakerModel:
    """Thread-safe lazy holder of the encoder (one call at a time)."""

    def __init__(self) -> None:
        self._encoder: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._encoder is None:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # webrtcvad's pkg_resources import
                from resemblyzer import VoiceEncoder

            self._encoder = VoiceEncoder("cpu", verbose=False)
            logger.info("loaded the Resemblyzer speaker encoder")
        return self._encoder

    def embed(self, audio: npt.NDArray[np.float32],
              regions: list[Chunk]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Window centres and unit embeddings over the speech regions of 16 kHz audio."""
        import torch

        with self._lock:
            encoder = self._load()  # imports resemblyzer (its warnings silenced) first
            from resemblyzer.audio import wav_to_mel_spectrogram

            mel = wav_to_mel_spectrogram(audio)
            width = int(WINDOW_S * MEL_FRAMES_PER_S)
            hop = int(HOP_S * MEL_FRAMES_PER_S)
            starts: list[int] = []
            for region in regions:
                lo = region.start_sample * MEL_FRAMES_PER_S // SAMPLE_RATE
                hi = min(len(mel), region.end_sample * MEL_FRAMES_PER_S // SAMPLE_RATE)
                if hi - lo < MIN_WINDOW_S * MEL_FRAMES_PER_S:
                    continue
                first = max(0, min(lo, hi - width))
                starts.extend(range(first, max(first + 1, hi - width + 1), hop))
            if not starts or len(mel) < width:
                return np.zeros(0, np.int64), np.zeros((0, 256), np.float32)
            batch = np.stack([mel[s:s + width] for s in starts])
            with torch.no_grad():
                vectors = encoder(torch.from_numpy(batch).float()).numpy()
        centers = np.array([(s + width // 2) * SAMPLE_RATE // MEL_FRAMES_PER_S for s in starts],
                           dtype=np.int64)
        return centers, vectors.astype(np.float32)


def refined_affinity(vectors: npt.NDArray[np.float32], keep: float = 0.3) -> npt.NDArray[Any]:
    sim = np.clip(vectors @ vectors.T, 0.0, 1.0)
    k = max(2, int(keep * len(sim)))
    for row in sim:
        bar = np.sort(row)[-k]
        row[row < bar] *= 0.01
    return np.maximum(sim, sim.T)


def estimate_speakers(affinity: npt.NDArray[Any], max_speakers: int) -> int:
    """The eigengap of the normalised Laplacian: the number of clear clusters."""
    degree = affinity.sum(axis=1)
    inv = 1.0 / np.sqrt(np.maximum(degree, 1e-9))
    laplacian = np.eye(len(affinity)) - inv[:, None] * affinity * inv[None, :]
    values = np.sort(np.linalg.eigvalsh(laplacian))[: max_speakers + 1]
    if len(values) < 2:
        return 1
    gaps = np.diff(values)
    return int(np.argmax(gaps[:max_speakers]) + 1)


def cluster(vectors: npt.NDArray[np.float32], speakers: int | None, *,
            max_speakers: int = 8) -> tuple[npt.NDArray[np.int64], int]:
    """Labels (0-based, numbered in order of first appearance) and the speaker count."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64), 0
    if n < 3 or speakers == 1:
        return np.zeros(n, np.int64), 1
    affinity = refined_affinity(vectors)
    from sklearn.cluster import SpectralClustering

    def split(k: int) -> npt.NDArray[Any]:
        return _smooth(SpectralClustering(n_clusters=k, affinity="precomputed",
                                          random_state=0).fit_predict(affinity))

    if speakers:
        k = min(speakers, n - 1)
        raw = split(k) if k > 1 else np.zeros(n, np.int64)
    else:
        # Asked to diarize without a count: at least two speakers; more only while the
        # clusters stay apart (two clusters whose centres are this alike are one voice).
        k = min(max(2, estimate_speakers(affinity, max_speakers)), n - 1)
        raw = split(k)
        while k > 2 and _closest_centroids(vectors, raw) > SAME_VOICE:
            k -= 1
            raw = split(k)
    order: dict[int, int] = {}
    for label in raw:
        order.setdefault(int(label), len(order))
    labels = np.array([order[int(label)] for label in raw], dtype=np.int64)
    return labels, len(order)


def _closest_centroids(vectors: npt.NDArray[np.float32], labels: npt.NDArray[Any]) -> float:
    centres = np.stack([vectors[labels == j].mean(axis=0) for j in np.unique(labels)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sim = centres @ centres.T
    np.fill_diagonal(sim, -1.0)
    return float(sim.max())


def _smooth(labels: npt.NDArray[Any], width: int = 5) -> npt.NDArray[Any]:
    """Majority over neighbouring windows: one stray window does not make a speaker turn."""
    out = labels.copy()
    half = width // 2
    for i in range(len(labels)):
        window = labels[max(0, i - half): i + half + 1]
        values, counts = np.unique(window, return_counts=True)
        out[i] = values[np.argmax(counts)]
    return out


def diarize(model: SpeakerModel, audio: npt.NDArray[np.float32], regions: list[Chunk],
            speakers: int | None) -> SpeakerTrack:
    centers, vectors = model.embed(audio, regions)
    labels, count = cluster(vectors, speakers)
    return SpeakerTrack(centers, labels, count)
