"""Fixed-length stream segments (stream jobs' 5 s callbacks) from final words.

Segment ``k`` covers ``[k * length, (k + 1) * length)`` of stream time. A word belongs to the
segment that holds its midpoint, so a word straddling a boundary is in exactly one segment.
Segment ``k`` is complete once the session has settled past its end: every final that can
touch it has arrived (``settled_sample`` is the live session's committed point).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from earmark.core.events import Word


@dataclass(frozen=True)
class Segment:
    index: int
    start_sample: int
    end_sample: int
    words: tuple[Word, ...]
    # Final words of later segments that start before this one ends (their audio overlaps it).
    overhang: tuple[Word, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(w.text.strip() for w in self.words if w.text.strip())


class SegmentAssembler:
    def __init__(self, segment_samples: int, *, first_index: int = 0,
                 offset_samples: int = 0) -> None:
        """``first_index``/``offset_samples`` continue a stream after a restart: segment
        numbering and times go on from where the earlier run stopped."""
        if segment_samples <= 0:
            raise ValueError("segment_samples must be positive")
        self.segment_samples = segment_samples
        self._next = first_index
        self._offset = offset_samples
        self._words: list[Word] = []
        self._settled = 0
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

    def receive_settled(self, settled_sample: int) -> None:
        """No final will arrive any more for audio before ``settled_sample`` (this run)."""
        self._settled = max(self._settled, settled_sample + self._offset)
        while (self._next + 1) * self.segment_samples <= self._settled:
            self._cut()

    def receive_end(self, end_sample: int) -> None:
        """The stream stopped at ``end_sample`` (this run): the last, partial segment too."""
        end = end_sample + self._offset
        self.receive_settled(end_sample)
        if end > self._next * self.segment_samples or self._words:
            self._cut(end=max(end, self._next * self.segment_samples))

    def segments_to_send(self) -> list[Segment]:
        ready, self._ready = self._ready, []
        return ready

    def _cut(self, end: int | None = None) -> None:
        start = self._next * self.segment_samples
        stop = end if end is not None else start + self.segment_samples
        def inside(w: Word) -> bool:
            return end is not None or (w.start_sample + w.end_sample) // 2 < stop

        mine = [w for w in self._words if inside(w)]
        self._words = [w for w in self._words if not inside(w)]
        overhang = tuple(w for w in self._words if w.start_sample < stop)
        self._ready.append(Segment(self._next, start, stop, tuple(mine), overhang))
        self._next += 1
