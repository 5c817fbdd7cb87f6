"""Frozen values that cross the core's boundary: recognition requests/results and events."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


class Priority(enum.IntEnum):
    """Scheduler lanes, lowest value served first."""

    FINAL = 0
    SYNC = 1
    PARTIAL = 2
    FILE = 3


@dataclass(frozen=True)
class Word:
    """One recognised word; times are sample indices on the session's timeline."""

    text: str  # as decoded, with punctuation and case
    start_sample: int
    end_sample: int
    probability: float
    speaker: int | None = None  # 0-based, set when the client asked for speaker labels
    channel: int = 0  # of a multichannel stream (0-based)


@dataclass(frozen=True)
class Recognition:
    """What the recogniser returns for one request; times relative to the request audio."""

    words: tuple[Word, ...]
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    language: str | None = None  # the language decoded in (detected when asked)
    music_prob: float = 0.0  # P(Whisper opens with a music note): sung or music, not speech
    language_probability: float | None = None  # Whisper's P(language), when it was detected


@dataclass(frozen=True, eq=False)
class RecognitionRequest:
    """Audio for the recogniser. ``start_sample`` places the audio on the session timeline."""

    request_id: int
    priority: Priority
    start_sample: int
    audio: npt.NDArray[np.float32] = field(repr=False)
    previous_text: str | None = None  # recent finals' text, for the music check
    hotwords: str | None = None
    language: str | None = None  # None: the model's default; "auto": detect, then decode
    beam_size: int | None = None  # None: the lane's (the server's setting for its priority)

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.audio)

@dataclass(frozen=True)
class SpeechStarted:
    start_sample: int


@dataclass(frozen=True)
class Transcript:
    """An interim (``is_final=False``) or final result covering [start_sample, end_sample)."""

    start_sample: int
    end_sample: int
    words: tuple[Word, ...]
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False
    # Filled by the text options stage when a client asks for them (label, VADER compound)
    # and (label, text, start_sample, end_sample) per entity.
    sentiment: tuple[str, float] | None = None
    entities: tuple[tuple[str, str, int, int], ...] = ()
    language: str | None = None  # the language the final was decoded in
    topics: tuple[tuple[str, float], ...] = ()  # (topic, relevance), when asked for
    language_confidence: float | None = None  # P(language) when the language was detected

    @property
    def text(self) -> str:
        return " ".join(w.text.strip() for w in self.words if w.text.strip())

    @property
    def confidence(self) -> float:
        if not self.words:
            return 0.0
        return float(sum(w.probability for w in self.words) / len(self.words))


@dataclass(frozen=True)
class UtteranceEnd:
    last_word_end_sample: int


@dataclass(frozen=True)
class StreamClosed:
    """Every final is out after a CloseStream; the adapter may send Metadata and close."""

    duration_samples: int


@dataclass(frozen=True)
class SourceStatus:
    """State of a pulled URL source: "live", "reconnecting", "ended" or "failed"."""

    state: str
    reason: str | None = None


@dataclass(frozen=True)
class TagScore:
    name: str
    kind: str  # "topic" | "mood" | "keyword"
    score: float
    threshold: float = 0.0  # the tag's calibrated bar; 0 for moods (the best one is taken)


@dataclass(frozen=True)
class Tags:
    start_sample: int
    end_sample: int
    tags: tuple[TagScore, ...]
    undocumented: tuple[TagScore, ...] = ()
    reason: str | None = None


Event = SpeechStarted | Transcript | UtteranceEnd | StreamClosed | SourceStatus | Tags
