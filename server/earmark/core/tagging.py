"""Rolling tag aggregation: the pure part of tagging.

Inputs: final transcripts (``receive_final``) and tag scores computed elsewhere
(``receive_scores``). Outputs: scoring requests (``requests_to_send``) and ``Tags`` events
(``events_to_send``). Time is audio time in samples at 16 kHz; nothing here waits, loads a
model or reads a clock.

- The window holds the most recent finals up to ``window_s`` seconds of speech.
- A scoring request goes out when new finals arrived and at least ``min_interval_s`` of audio
  passed since the last one; one request is in flight at a time (a newer window replaces a
  pending one, not a running one).
- Hysteresis: a tag enters at ``enter`` times its threshold and leaves below ``exit`` times
  it, so a score hovering at the threshold does not flicker.
- Too little speech in the window: no tags, with ``reason="insufficient_speech"``.
- A ``Tags`` event goes out only when the tag set (or the reason) changes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from earmark.core.events import Tags, TagScore

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class TagRequest:
    request_id: int
    text: str
    seed_sentence: str | None


@dataclass(frozen=True)
class ScoredWindow:
    """What the scorer says about one request's text."""

    topics: tuple[TagScore, ...]  # every topic of the collection
    moods: tuple[TagScore, ...]
    keywords: tuple[TagScore, ...] = ()  # phrases found in the talk, not in the catalogue


@dataclass(frozen=True)
class TaggingConfig:
    window_s: float = 60.0
    min_interval_s: float = 3.0
    min_words: int = 15
    max_topics: int = 3
    enter: float = 1.0  # x the tag's threshold to enter
    exit: float = 0.9  # x the tag's threshold to stay
    margin: float = 0.08  # a topic must also score within this of the best topic
    mood_margin: float = 0.05  # a new mood must beat the current one by this much (scores
    # are a distribution over the moods)
    max_keywords: int = 5


@dataclass
class _Final:
    text: str
    start: int
    end: int
    words: int


@dataclass
class TagAggregator:
    config: TaggingConfig = field(default_factory=TaggingConfig)
    seed_sentence: str | None = None
    _finals: deque[_Final] = field(default_factory=deque)
    _next_id: int = 0
    _in_flight: int | None = None
    _dirty: bool = False
    _last_request_end: int | None = None
    _requests: list[TagRequest] = field(default_factory=list)
    _events: list[Tags] = field(default_factory=list)
    _current: frozenset[str] = frozenset()
    _current_reason: str | None = "unset"
    _window: tuple[int, int] = (0, 0)

    # ------------------------------------------------------------------ inputs
    def receive_final(self, text: str, start_sample: int, end_sample: int) -> None:
        text = text.strip()
        if not text:
            return
        self._finals.append(_Final(text, start_sample, end_sample, len(text.split())))
        limit = int(self.config.window_s * SAMPLE_RATE)
        while len(self._finals) > 1 and self._speech_samples() > limit:
            self._finals.popleft()
        self._dirty = True
        self._maybe_request(end_sample)

    def receive_time(self, now_sample: int) -> None:
        """Audio time passed (the session's position): a held-back window may be due."""
        if self._finals:
            self._maybe_request(now_sample)

    def receive_scores(self, request_id: int, scored: ScoredWindow) -> None:
        if request_id != self._in_flight:
            return
        self._in_flight = None
        self._apply(scored)
        if self._dirty and self._finals:
            self._maybe_request(self._finals[-1].end)

    def receive_failure(self, request_id: int) -> None:
        """Scoring failed: keep the last tags; try again with the next final."""
        if request_id == self._in_flight:
            self._in_flight = None
            self._dirty = True

    @property
    def waiting(self) -> bool:
        """New finals are held back by the interval (``receive_time`` will send them)."""
        return self._dirty and self._in_flight is None and bool(self._finals)

    # ----------------------------------------------------------------- outputs
    def requests_to_send(self) -> list[TagRequest]:
        out, self._requests = self._requests, []
        return out

    def events_to_send(self) -> list[Tags]:
        out, self._events = self._events, []
        return out

    # ---------------------------------------------------------------- internals
    def _speech_samples(self) -> int:
        return sum(f.end - f.start for f in self._finals)

    def _maybe_request(self, now: int) -> None:
        if self._in_flight is not None or not self._dirty:
            return
        gap = int(self.config.min_interval_s * SAMPLE_RATE)
        if self._last_request_end is not None and now - self._last_request_end < gap:
            return
        self._dirty = False
        self._last_request_end = now
        self._window = (self._finals[0].start, self._finals[-1].end)
        if sum(f.words for f in self._finals) < self.config.min_words:
            self._publish(frozenset(), (), (), "insufficient_speech")
            return
        self._next_id += 1
        self._in_flight = self._next_id
        text = " ".join(f.text for f in self._finals)
        self._requests.append(TagRequest(self._next_id, text, self.seed_sentence))

    def _apply(self, scored: ScoredWindow) -> None:
        cfg = self.config
        best = max((s.score for s in scored.topics), default=0.0)

        def keep(score: TagScore) -> bool:
            staying = score.name in self._current
            bar = (cfg.exit if staying else cfg.enter) * score.threshold
            margin = cfg.margin * (1.5 if staying else 1.0)
            return score.score >= bar and score.score >= best - margin

        topics = sorted((s for s in scored.topics if keep(s)), key=lambda s: -s.score)
        chosen = topics[: cfg.max_topics]
        if scored.moods:  # the talk always has a tone: the best-scoring mood, held unless beaten
            mood = max(scored.moods, key=lambda s: s.score)
            held = next((s for s in scored.moods if s.name in self._current), None)
            if held is not None and mood.score < held.score + cfg.mood_margin:
                mood = held
            chosen.append(mood)
        names = frozenset(s.name for s in chosen)
        keywords = tuple(scored.keywords[: cfg.max_keywords])
        self._publish(names, tuple(chosen), keywords, None)

    def _publish(self, names: frozenset[str], tags: tuple[TagScore, ...],
                 keywords: tuple[TagScore, ...], reason: str | None) -> None:
        if names == self._current and reason == self._current_reason:
            return
        self._current, self._current_reason = names, reason
        start, end = self._window
        self._events.append(Tags(start, end, tags, keywords, reason))
