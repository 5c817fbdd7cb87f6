"""Synthetic audio, a stand-in VAD and a fake recogniser for the pure core tests.

A "word" is a run of a constant non-zero value ``(k + 1) / 1000``: the fake VAD calls any
window with a non-zero sample speech, and the fake recogniser names each run ``w<k>``.
"""

from __future__ import annotations

import numpy as np

from earmark.core import SAMPLE_RATE, WINDOW_SAMPLES
from earmark.core.events import Recognition, RecognitionRequest, Transcript, Word
from earmark.core.session import StreamSession

WORD = int(0.3 * SAMPLE_RATE)
SUNG_FROM = 100
GAP = int(0.1 * SAMPLE_RATE)


def utterance(first_word: int, n_words: int) -> np.ndarray:
    parts = []
    for k in range(first_word, first_word + n_words):
        parts.append(np.full(WORD, (k + 1) / 1000, dtype=np.float32))
        parts.append(np.zeros(GAP, dtype=np.float32))
    return np.concatenate(parts)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def fake_vad(windows: np.ndarray) -> list[float]:
    return [
        1.0 if np.any(windows[i : i + WINDOW_SAMPLES]) else 0.0
        for i in range(0, len(windows), WINDOW_SAMPLES)
    ]


def fake_recognize(request: RecognitionRequest) -> Recognition:
    audio = request.audio
    words = []
    i = 0
    while i < len(audio):
        if audio[i] == 0:
            i += 1
            continue
        j = i
        while j < len(audio) and audio[j] == audio[i]:
            j += 1
        k = int(round(float(audio[i]) * 1000)) - 1
        words.append(Word(f"w{k}", i, j, 0.9))
        i = j
    # Words from SUNG_FROM on stand for sung lyrics: Whisper would open them with a note.
    sung = any(int(w.text[1:]) >= SUNG_FROM for w in words)
    return Recognition(tuple(words), music_prob=0.05 if sung else 1e-4)


class Driver:
    """Feeds audio in chunks; answers requests at once or holds them for later."""

    def __init__(self, session: StreamSession, *, hold: bool = False,
                 recognize=fake_recognize) -> None:  # noqa: ANN001
        self.session = session
        self.recognize = recognize
        self.hold = hold
        self.held: list[RecognitionRequest] = []
        self.events: list = []
        self.requests: list[RecognitionRequest] = []

    def feed(self, audio: np.ndarray, chunk_windows: int = 4) -> None:
        step = chunk_windows * WINDOW_SAMPLES
        whole = len(audio) - len(audio) % WINDOW_SAMPLES
        for start in range(0, whole, step):
            chunk = audio[start : min(start + step, whole)]
            self.session.receive_audio(chunk, fake_vad(chunk))
            self.pump()

    def pump(self) -> None:
        pending = self.session.requests_to_send()
        while pending:
            request = pending.pop(0)
            self.requests.append(request)
            if self.hold:
                self.held.append(request)
                continue
            self.session.receive_result(request.request_id, self.recognize(request))
            pending.extend(self.session.requests_to_send())
        self.events.extend(self.session.events_to_send())

    def answer(self, request: RecognitionRequest) -> None:
        self.held.remove(request)
        self.session.receive_result(request.request_id, self.recognize(request))
        self.pump()

    def answer_all(self) -> None:
        self.hold = False
        while self.held:
            self.answer(self.held[0])

    @property
    def finals(self) -> list[Transcript]:
        return [e for e in self.events if isinstance(e, Transcript) and e.is_final]

    @property
    def interims(self) -> list[Transcript]:
        return [e for e in self.events if isinstance(e, Transcript) and not e.is_final]


def check_invariants(events: list, audio_end: int) -> None:
    """Finals never overlap; no interim after the final that covers it; word times are
    monotonic and inside the audio received."""
    last_final_end = 0
    last_word_end = 0
    for event in events:
        if not isinstance(event, Transcript):
            continue
        assert 0 <= event.start_sample <= event.end_sample <= audio_end
        for w in event.words:
            assert event.start_sample <= w.start_sample <= w.end_sample <= event.end_sample
        if event.is_final:
            assert event.start_sample >= last_final_end, "finals overlap"
            last_final_end = event.end_sample
            for w in event.words:
                assert w.start_sample >= last_word_end, "word times go backwards"
                last_word_end = w.end_sample
        else:
            assert event.start_sample >= last_final_end, "interim for audio already final"
