"""Fixed-length stream segments (stream jobs' 5 s callbacks) from final words.

Segment ``k`` covers ``[k * length, (k + 1) * length)`` of stream time. A word belongs to the
segment that holds its midpoint, so a word straddling a boundary is in exactly one segment.
Segment ``k`` is complete once the session has settled past its end: every final that can
touch it has arrived (``settled_sample`` is the live session's committed point). With a
deadline, it is also complete ``deadline_s`` of wall-clock time after the stream's audio
reached its end, with the words final by then: a word of it that becomes final later leads
the next segment sent. So the callbacks keep pace with continuous talk, whose last words may
wait seconds for a pause. The deadline holds only while the audio comes at about real time:
a file read faster than that (its finals are what paces it) waits for its finals.
No word is ever in two segments or in none, and words keep their spoken order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from earmark.core import SAMPLE_RATE
from earmark.core.events import Word

# Audio read this far ahead of the wall clock since a segment's end is not a live source:
# HLS delivers a few seconds at once, a file as fast as the finals allow.
READ_AHEAD_SLACK_S = 3.0


@dataclass(frozen=True)
class Segment:
    index: int
    start_sample: int
    end_sample: int
    words: tuple[Word, ...]
    # Final words of later segments that start before this one ends (their audio overlaps it).
    overhang: tuple[Word, ...] = ()
    # Every word said before this point is in this segment or an earlier one: where a resumed
    # run must start decoding so that nothing is lost (the end, unless cut by the deadline).
    sent_through: int | None = None

    @property
    def text(self) -> str:
        return " ".join(w.text.strip() for w in self.words if w.text.strip())

    @property
    def complete_until(self) -> int:
        return self.end_sample if self.sent_through is None else self.sent_through


class SegmentAssembler:
    def __init__(self, segment_samples: int, *, first_index: int = 0,
                 offset_samples: int = 0, deadline_s: float | None = None) -> None:
        """``first_index``/``offset_samples`` continue a stream after a restart: segment
        numbering goes on, and this run's sample 0 is stream time ``offset_samples`` (the
        earlier run's ``complete_until``, which may lie inside a segment it sent).
        ``deadline_s``: wall-clock seconds after the audio reached a segment's end at which
        it goes with what is final (None: only once settled)."""
        if segment_samples <= 0:
            raise ValueError("segment_samples must be positive")
        if deadline_s is not None and deadline_s < 0:
            raise ValueError("deadline_s must not be negative")
        self.segment_samples = segment_samples
        self.deadline_s = deadline_s
        self._next = first_index
        self._offset = offset_samples
        self._words: list[Word] = []
        self._settled = offset_samples
        self._received = offset_samples
        self._reached: dict[int, float] = {}  # segment index -> when the audio passed its end
        self._ready: list[Segment] = []

    @property
    def next_index(self) -> int:
        return self._next

    def receive_words(self, words: Iterable[Word]) -> None:
        """Final words, times in samples of this run (before the offset)."""
        for w in words:
            if w.text.strip():
                self._words.append(replace(w, start_sample=w.start_sample + self._offset,
                                           end_sample=w.end_sample + self._offset))

    def receive_settled(self, settled_sample: int, received_sample: int | None = None,
                        at_s: float | None = None) -> None:
        """No final will arrive any more for audio before ``settled_sample``; the stream's
        audio has reached ``received_sample`` (both in this run's samples) at wall-clock
        ``at_s``."""
        self._settled = max(self._settled, settled_sample + self._offset)
        if received_sample is not None and at_s is not None:
            self._received = max(self._received, received_sample + self._offset)
            k = self._next
            while (k + 1) * self.segment_samples <= received_sample + self._offset:
                self._reached.setdefault(k, at_s)
                k += 1
        while self._due(self._next, at_s):
            self._cut()

    def _due(self, index: int, at_s: float | None) -> bool:
        end = (index + 1) * self.segment_samples
        if end <= self._settled:
            return True
        reached = self._reached.get(index)
        if self.deadline_s is None or reached is None or at_s is None:
            return False
        waited = at_s - reached
        ahead = (self._received - end) / SAMPLE_RATE - waited
        return waited >= self.deadline_s and ahead <= READ_AHEAD_SLACK_S

    def receive_end(self, end_sample: int) -> None:
        """The stream stopped at ``end_sample`` (this run): the last, partial segment too.
        It reaches at least to its last word: the finals flushed at the stop hear the last
        few milliseconds the resampler held, past what had been counted."""
        end = max([end_sample + self._offset] + [w.end_sample for w in self._words])
        self.receive_settled(end_sample)
        if end > self._next * self.segment_samples or self._words:
            self._cut(end=max(end, self._next * self.segment_samples))

    def open_segment(self, interim: Iterable[Word]) -> Segment:
        """The segment still open, as it stands: its final words so far (a late word of an
        earlier segment included, as it will be sent) and then ``interim`` (this run's
        samples), the words not final yet. For partial callbacks; nothing is consumed."""
        start = self._next * self.segment_samples
        stop = start + self.segment_samples

        def inside(w: Word) -> bool:
            return (w.start_sample + w.end_sample) // 2 < stop

        final = [w for w in self._words if inside(w)]
        after = final[-1].end_sample if final else -1
        guess = [replace(w, start_sample=w.start_sample + self._offset,
                         end_sample=w.end_sample + self._offset)
                 for w in interim if w.text.strip()]
        guess = [w for w in guess if inside(w) and w.start_sample >= after]
        return Segment(self._next, start, stop, tuple(final + guess))

    def segments_to_send(self) -> list[Segment]:
        ready, self._ready = self._ready, []
        return ready

    def _cut(self, end: int | None = None) -> None:
        start = self._next * self.segment_samples
        stop = end if end is not None else start + self.segment_samples
        def inside(w: Word) -> bool:
            return end is not None or (w.start_sample + w.end_sample) // 2 < stop

        # Words are kept in time order, so a late word of an earlier segment leads this one.
        mine = [w for w in self._words if inside(w)]
        self._words = [w for w in self._words if not inside(w)]
        overhang = tuple(w for w in self._words if w.start_sample < stop)
        # Where a resumed run must start: no word before it is left unsent (a word that
        # straddles the boundary, or one not final yet, is heard again whole).
        through = stop if end is not None else min(
            [stop, self._settled] + [w.start_sample for w in self._words])
        self._ready.append(Segment(self._next, start, stop, tuple(mine), overhang, through))
        self._reached.pop(self._next, None)
        self._next += 1
