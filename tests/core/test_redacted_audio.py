"""Redacted audio: which words are redactions, padded and merged spans, and a tone in place of
exactly those spans."""

from __future__ import annotations

import numpy as np

from earmark.core.events import Word
from earmark.core.redacted_audio import (
    BEEP_HZ,
    BEEP_LEVEL,
    PAD_SAMPLES,
    beep_out,
    is_redacted,
    redacted_spans,
)


def w(text: str, start: int, end: int) -> Word:
    return Word(text, start, end, 0.9)


def test_redaction_words_are_recognised() -> None:
    assert is_redacted(w(" [PERSON_NAME].", 0, 1))
    assert is_redacted(w(" #######", 0, 1))
    assert not is_redacted(w(" [laughs]", 0, 1))
    assert not is_redacted(w(" ##", 0, 1))
    assert not is_redacted(w(" London", 0, 1))


def test_spans_are_padded_and_merged() -> None:
    words = [w(" my", 0, 3000), w(" [PERSON_NAME]", 4000, 9000), w(" and", 9000, 10000),
             w(" [LOCATION]", 10500, 14000), w(" ok", 30000, 31000),
             w(" ####", 40000, 42000)]
    assert redacted_spans(words) == [(4000 - PAD_SAMPLES, 14000 + PAD_SAMPLES),
                                     (40000 - PAD_SAMPLES, 42000 + PAD_SAMPLES)]
    assert redacted_spans([w(" [DATE]", 100, 200)]) == [(0, 200 + PAD_SAMPLES)]


def test_beep_replaces_the_spans_only() -> None:
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16000).astype(np.float32)
    start = 32000  # the audio is 2-3 s of the stream
    out = beep_out(audio, start, [(30000, 33000), (40000, 41000), (47000, 60000)])
    t = np.arange(start, start + 16000)
    tone = BEEP_LEVEL * np.sin(2 * np.pi * BEEP_HZ * t / 16000)
    beeped = np.zeros(16000, bool)
    beeped[:1000] = beeped[8000:9000] = beeped[15000:] = True
    assert np.allclose(out[beeped], tone[beeped], atol=1e-6)
    assert np.array_equal(out[~beeped], audio[~beeped])
