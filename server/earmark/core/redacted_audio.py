"""Redacted audio: the spans of redacted words replaced by a tone, so no redacted word can be
heard (pure, numpy only).

Whisper's word times are good to about a tenth of a second, so each span is widened by
``PAD_SAMPLES`` on both sides: a little of the neighbouring words may be covered, none of the
redacted one is left. A span reaching past the audio's edges is cut to them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE
from earmark.core.events import Word
from earmark.core.text_options import LABELS

_LABELS = frozenset(LABELS.values())

PAD_SAMPLES = SAMPLE_RATE * 2 // 10  # 0.2 s either side
BEEP_HZ = 1000.0
BEEP_LEVEL = 0.2  # -14 dBFS


def is_redacted(word: Word) -> bool:
    """A word the text options put in place of redacted speech: ``[LABEL]`` or ``####``."""
    text = word.text.strip().rstrip(".,!?;:")
    return (text.startswith("[") and text.endswith("]") and text[1:-1] in _LABELS) or (
        len(text) >= 4 and set(text) == {"#"})


def redacted_spans(words: Iterable[Word]) -> list[tuple[int, int]]:
    """(start, end) samples of every redacted word, padded, overlapping spans merged."""
    spans = sorted((max(0, w.start_sample - PAD_SAMPLES), w.end_sample + PAD_SAMPLES)
                   for w in words if is_redacted(w))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def beep_out(audio: npt.NDArray[np.float32], start_sample: int,
             spans: Iterable[tuple[int, int]]) -> npt.NDArray[np.float32]:
    """A copy of ``audio`` (which starts at ``start_sample``) with each span a steady tone."""
    out = np.array(audio, dtype=np.float32, copy=True)
    for start, end in spans:
        lo, hi = max(0, start - start_sample), min(len(out), end - start_sample)
        if hi > lo:
            t = np.arange(lo, hi) + start_sample  # stream time: the tone's phase runs on
            out[lo:hi] = BEEP_LEVEL * np.sin(2 * np.pi * BEEP_HZ * t / SAMPLE_RATE)
    return out
