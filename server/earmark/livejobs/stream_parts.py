"""What a stream task keeps across its segments: the pulled audio for redacted segment files,
the topics of the stream so far, and its rolling summary and chapters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from earmark.core.audio import AudioBuffer
from earmark.core.events import Word
from earmark.core.messages import Message
from earmark.core.redacted_audio import beep_out, redacted_spans
from earmark.core.segments import Segment
from earmark.core.story import StorySoFar
from earmark.core.summary import chapters_of, headline_index, summary_of, summary_picks
from earmark.core.text_options import TextOptions
from earmark.dialects.stream_jobs import Chapter, SegmentTopics, StreamOptions
from earmark.store.redacted_audio import write_segment


class RedactedAudio:
    """The pulled audio of one task, kept until its segment is written, then written with
    every redacted word's span beeped (``core/redacted_audio.py``). Files are written before
    the callback that links them is recorded."""

    def __init__(self, data_dir: str, task_id: str, fmt: str, offset_samples: int) -> None:
        self.data_dir = data_dir
        self.task_id = task_id
        self.fmt = fmt
        self.offset = offset_samples  # stream time of this run's first sample
        self.audio = AudioBuffer()
        self._carry: list[tuple[int, int]] = []  # spans reaching into the next segment

    def receive(self, pcm: bytes) -> None:
        self.audio.append(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768)

    async def write(self, seg: Segment, words: Sequence[Word]) -> str:
        spans = redacted_spans(words) + self._carry
        lo = max(seg.start_sample - self.offset, self.audio.start_sample)
        hi = min(seg.end_sample - self.offset, self.audio.end_sample)
        samples = self.audio.slice(lo, hi) if hi > lo else np.zeros(0, np.float32)
        beeped = beep_out(samples, lo + self.offset, spans)
        await asyncio.to_thread(write_segment, self.data_dir, self.task_id, seg.index, self.fmt,
                                beeped)
        self._carry = [s for s in spans if s[1] > seg.end_sample]
        self.audio.trim_before(max(lo, hi))
        return f"/audio-stream/{self.task_id}/segments/{seg.index}/redacted-audio"


class StreamTopics:
    """IAB categories and custom topics per segment, and of the stream so far: each label's
    relevance summed over the segments, weighted by their words, scaled so the best is 1."""

    SUMMARY_LABELS = 10

    def __init__(self, tagger: Any, options: StreamOptions) -> None:
        self.tagger = tagger
        self.options = options
        self.iab: dict[str, float] = {}
        self.custom: dict[str, float] = {}

    async def update(self, words: Sequence[Word]) -> SegmentTopics:
        said = " ".join(w.text.strip() for w in words if w.text.strip())
        iab, custom = await asyncio.wrap_future(self.tagger.topics(said, self.options.topics)) \
            if said else ((), ())
        if not self.options.iab_categories:
            iab = ()
        for found, total in ((iab, self.iab), (custom, self.custom)):
            for label in found:
                total[label.label] = total.get(label.label, 0.0) + label.relevance * len(words)
        return SegmentTopics(tuple((t.label, t.relevance) for t in iab),
                             tuple((t.label, t.relevance) for t in custom),
                             self._scaled(self.iab), self._scaled(self.custom))

    def _scaled(self, total: dict[str, float]) -> dict[str, float]:
        if not total:
            return {}
        top = max(total.values())
        best = sorted(total.items(), key=lambda kv: -kv[1])[: self.SUMMARY_LABELS]
        return {label: round(value / top, 3) for label, value in best}


class StreamStory:
    """Rolling summary and chapters of one stream task: the words so far (after the text
    options, so redacted words stay redacted), each sentence embedded once."""

    def __init__(self, engine: Any, options: StreamOptions) -> None:
        self.engine = engine
        self.options = options
        self.words = StorySoFar()
        self.vectors: dict[str, np.ndarray] = {}
        self.gists: dict[str, str] = {}

    async def update(self, words: Sequence[Word]) -> tuple[str | None, tuple[Chapter, ...]]:
        self.words.add(words)
        found = self.words.sentences()
        if not found:
            return "", ()
        texts = [m.text for m in found]
        new = sorted({t for t in texts if t not in self.vectors})
        if new:
            got = await asyncio.wrap_future(self.engine.tag_worker.embed(new))
            self.vectors.update(zip(new, got, strict=True))
        for stale in set(self.vectors) - set(texts):  # sentences that grew or rolled off
            del self.vectors[stale]
        vectors = np.stack([self.vectors[t] for t in texts])
        summary = None
        if self.options.summarization:
            summary = await self._summary(found, texts, vectors)
        chapters: list[Chapter] = []
        if self.options.auto_chapters:
            for a, b, best in chapters_of(texts, vectors):
                part = texts[a:b]
                chapters.append(Chapter(found[a].start_sample, found[b - 1].end_sample,
                                        texts[best], await self._gist(found[a:b], texts[best]),
                                        summary_of(part, vectors[a:b])))
        return summary, tuple(chapters)

    async def _summary(self, found: list[Message], texts: list[str],
                       vectors: np.ndarray) -> str:
        kind = self.options.summary_type
        if kind in ("headline", "gist"):
            best = texts[headline_index(texts, vectors)]
            return best if kind == "headline" else await self._gist(found, best)
        if kind not in ("bullets", "bullets_verbose"):
            return summary_of(texts, vectors)
        picks = summary_picks(texts, vectors, verbose=kind == "bullets_verbose")
        return "\n".join(f"- {texts[i]}" for i in picks)

    async def _gist(self, part: list[Message], headline: str) -> str:
        """The part's top YAKE key phrase; the headline's first words when it has none."""
        text = " ".join(m.text for m in part)
        if text not in self.gists:
            done = await asyncio.wrap_future(self.engine.understanding.submit(
                [w for m in part for w in m.words], TextOptions(highlights=True)))
            top = max(done.highlights, key=lambda h: h.rank, default=None)
            self.gists[text] = top.text if top else " ".join(headline.split()[:6])
            if len(self.gists) > 256:
                self.gists.pop(next(iter(self.gists)))
        return self.gists[text]
