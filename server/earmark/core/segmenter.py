"""Speech start/end decisions from per-window VAD probabilities (Silero's hysteresis rule)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from earmark.core import WINDOW_SAMPLES


@dataclass(frozen=True)
class SegmenterConfig:
    """Thresholds on speech probability and durations in samples (16 kHz).

    ``silence_samples`` is how much continuous silence ends a speech region (Deepgram's
    ``endpointing``). ``pad_samples`` of audio are kept before the detected start and after the
    last speech window so the recogniser sees whole words.
    """

    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_samples: int = 2 * WINDOW_SAMPLES
    silence_samples: int = 8000
    pad_samples: int = 3200
    window_samples: int = WINDOW_SAMPLES

    @property
    def lookback_samples(self) -> int:
        """How far before the current sample a future speech start can reach."""
        return self.pad_samples + self.min_speech_samples


@dataclass(frozen=True)
class SegmentStart:
    start_sample: int  # padded start of the speech region


@dataclass(frozen=True)
class SegmentEnd:
    end_sample: int  # padded end: last speech window + pad (never past the audio seen)


SegmentEvent = SegmentStart | SegmentEnd


class Segmenter:
    """Feed it one probability per window, in order; it reports region starts and ends."""

    def __init__(self, config: SegmenterConfig) -> None:
        self.config = config
        self.windows_seen = 0
        self.in_speech = False
        self._run_start: int | None = None  # first window of a run above threshold
        self._silence_start: int | None = None  # first window of the current silence
        self._floor = 0  # no region may start before the previous region's end

    @property
    def now_sample(self) -> int:
        return self.windows_seen * self.config.window_samples

    @property
    def silence_start(self) -> int | None:
        """Start of the silence inside an open region (None: talking, or no region open)."""
        return self._silence_start if self.in_speech else None

    def end_if_silence_holds(self) -> int:
        """The end sample a region would get if the current silence reaches the endpoint."""
        assert self._silence_start is not None
        return min(self._silence_start + self.config.pad_samples, self.now_sample)

    def receive_probs(self, probs: Iterable[float]) -> list[SegmentEvent]:
        events: list[SegmentEvent] = []
        cfg = self.config
        for prob in probs:
            start = self.now_sample
            self.windows_seen += 1
            if not self.in_speech:
                if prob >= cfg.threshold:
                    if self._run_start is None:
                        self._run_start = start
                    if self.now_sample - self._run_start >= cfg.min_speech_samples:
                        self.in_speech = True
                        self._silence_start = None
                        begin = max(self._floor, self._run_start - cfg.pad_samples, 0)
                        events.append(SegmentStart(begin))
                else:
                    self._run_start = None
                continue
            if prob >= cfg.neg_threshold:
                self._silence_start = None
            elif self._silence_start is None:
                self._silence_start = start
            if self._silence_start is not None and (
                self.now_sample - self._silence_start >= cfg.silence_samples
            ):
                events.append(self._end_region())
        return events

    def force_end(self, *, in_pause: bool = False, at: int | None = None) -> SegmentEnd | None:
        """Ends the open region now (Finalize, end of stream) at the current sample; with
        ``in_pause``, inside a pause, where the pause's endpoint would end it (the speech
        plus its pad), so a final decoded speculatively during the pause still fits (a voice
        agent's Finalize comes ~200 ms into the user's silence). ``at`` (inside the pause):
        end there instead, where a speculative final's audio ends."""
        if not self.in_speech:
            self._run_start = None
            return None
        if in_pause and self._silence_start is not None:
            if at is None or not self._silence_start <= at <= self.now_sample:
                at = self.end_if_silence_holds()
        else:
            at = self.now_sample
        self._silence_start = None
        return self._end_region(at=at)

    def _end_region(self, at: int | None = None) -> SegmentEnd:
        assert self._silence_start is not None or at is not None
        end = at if at is not None else self._silence_start
        assert end is not None
        end = min(end + self.config.pad_samples if at is None else end, self.now_sample)
        self.in_speech = False
        self._run_start = None
        self._silence_start = None
        self._floor = end
        return SegmentEnd(end)
