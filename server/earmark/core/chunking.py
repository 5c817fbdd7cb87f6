"""Whole-file chunking for file jobs: VAD probabilities -> decode chunks.

Speech regions come from the same ``Segmenter`` the live path uses. Neighbouring regions are
then packed into chunks of up to ``max_chunk_samples`` so that Whisper sees sentences with their
context (and chunks of similar length batch together); a region longer than that is split at
its quietest window in the second half of the allowed length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from earmark.core import SAMPLE_RATE
from earmark.core.events import Word
from earmark.core.segmenter import SegmentEnd, Segmenter, SegmenterConfig, SegmentStart

# A region this long whose words (by their midpoints) come slower than this was skipped.
MIN_UNHEARD_SAMPLES = 3 * SAMPLE_RATE // 2
MIN_WORDS_PER_S = 0.5


@dataclass(frozen=True)
class Chunk:
    """[start_sample, end_sample) of the file's 16 kHz timeline."""

    start_sample: int
    end_sample: int

    @property
    def samples(self) -> int:
        return self.end_sample - self.start_sample


def speech_regions(probs: Sequence[float], config: SegmenterConfig) -> list[Chunk]:
    """Padded speech regions of a whole file, one probability per window."""
    segmenter = Segmenter(config)
    regions: list[Chunk] = []
    start: int | None = None
    events = list(segmenter.receive_probs(probs))
    last = segmenter.force_end()
    if last is not None:
        events.append(last)
    for event in events:
        if isinstance(event, SegmentStart):
            start = event.start_sample
        elif isinstance(event, SegmentEnd) and start is not None:
            if event.end_sample > start:
                regions.append(Chunk(start, event.end_sample))
            start = None
    return regions


def _split_long(region: Chunk, probs: Sequence[float], window: int,
                max_samples: int) -> list[Chunk]:
    parts: list[Chunk] = []
    start = region.start_sample
    while region.end_sample - start > max_samples:
        lo = (start + max_samples // 2) // window
        hi = (start + max_samples) // window
        cut_window = min(range(lo, hi), key=lambda w: probs[w] if w < len(probs) else 0.0)
        cut = max(cut_window * window, start + window)
        parts.append(Chunk(start, cut))
        start = cut
    parts.append(Chunk(start, region.end_sample))
    return parts


def plan_chunks(
    probs: Sequence[float],
    config: SegmenterConfig,
    *,
    max_chunk_samples: int,
    max_gap_samples: int,
) -> list[Chunk]:
    """Decode chunks covering every speech region, in order, none longer than the maximum.

    Args:
        probs: speech probability per ``config.window_samples`` window of the file.
        config: the segmenter thresholds (silence to end a region, padding).
        max_chunk_samples: the longest chunk (keep room for Whisper's 30 s window and padding).
        max_gap_samples: regions further apart than this are never packed together (a long
            silence inside a chunk is wasted decode time).
    """
    pieces: list[Chunk] = []
    for region in speech_regions(probs, config):
        pieces.extend(_split_long(region, probs, config.window_samples, max_chunk_samples))
    chunks: list[Chunk] = []
    for piece in pieces:
        if chunks:
            last = chunks[-1]
            gap = piece.start_sample - last.end_sample
            if gap <= max_gap_samples and piece.end_sample - last.start_sample <= max_chunk_samples:
                chunks[-1] = Chunk(last.start_sample, piece.end_sample)
                continue
        chunks.append(piece)
    return chunks


def unheard(regions: Sequence[Chunk], words: Sequence[Word], chunk: Chunk) -> list[Chunk]:
    """The speech regions packed into ``chunk``, when its decode skipped one of them (else
    none): Whisper, decoding a long chunk without timestamps, sometimes leaves out a
    sentence after a pause (a 2.9 s TIMIT sentence between two others in
    ``benchmarks/coverage.py``'s file workload), and the alignment then stretches a
    neighbour's words over it. A region of 1.5 s or more holding under 0.5 words a second
    (by word midpoints) is taken as skipped; the chunk's regions are then decoded one by
    one instead."""
    inside = [r for r in regions
              if r.start_sample >= chunk.start_sample and r.end_sample <= chunk.end_sample]
    if len(inside) < 2:
        return []  # the chunk is one region: it was decoded alone already
    for r in inside:
        if r.samples < MIN_UNHEARD_SAMPLES:
            continue
        heard = sum(r.start_sample <= (w.start_sample + w.end_sample) // 2 < r.end_sample
                    for w in words)
        if heard < MIN_WORDS_PER_S * r.samples / SAMPLE_RATE:
            return inside
    return []
