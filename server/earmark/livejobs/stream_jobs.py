"""Stream jobs (seed 004): pull a live URL and call back every 5 s of stream with its words.

Callbacks go to the key's webhook (``PUT /v1/settings/webhook``, or ``--stream-webhook-url``)
through the persistent outbox, in order per task. A task ends with one last callback whose
status says why: 14 user stopped, 15 no data (the source ended or was silent for
``--stream-no-data-s``), 16 capacity reached, -1 the source failed. A task running when the
server stops resumes after the restart, numbering its segments on from where it was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import orjson

from earmark.core import SAMPLE_RATE
from earmark.core.events import Event, Transcript
from earmark.core.segments import Segment, SegmentAssembler
from earmark.dialects.stream_jobs import (
    CAPACITY,
    ERROR,
    FILLER_PROMPT,
    NO_DATA,
    USER_STOPPED,
    SentenceSentiment,
    StreamOptions,
    StreamStartRequest,
    error_callback,
    segment_callback,
    sentences_of,
    stop_callback,
    stream_options,
)
from earmark.errors import EarmarkError
from earmark.ingest.pull_session import PullOutcome, PullSession, probe_channels
from earmark.livejobs.services import JobServices
from earmark.livejobs.stream_parts import RedactedAudio, StreamStory, StreamTopics
from earmark.store.live_jobs import LiveJobStore, StreamTask
from earmark.store.redacted_audio import sweep

logger = logging.getLogger(__name__)

# Seed 004: -1 "does not stop the stream", so every way a task ends has a stopping code. A
# source that cannot be pulled (or gave up reconnecting) has no audio data: 15, as for one that
# ended or sent nothing for --stream-no-data-s. -1 ends a task only when the server itself
# failed on it (a final could not be decoded), which no other code describes.
_STATUS = {"stopped": (USER_STOPPED, "stopped by the user"),
           "silent": (NO_DATA, "no audio data"),
           "ended": (NO_DATA, "the stream ended"),
           "unreachable": (NO_DATA, "no audio data"),
           "failed": (ERROR, "processing failed")}
PARTIAL_EVERY_S = 1.0  # at most one partial callback a second per task
Languages = list[tuple[int, str, float | None]]  # (final's end, language, P(language))


def _heard(languages: Languages, seg: Segment) -> tuple[str | None, float | None]:
    """The language (and its P) of the first final that ends in the segment or after it."""
    heard = [(lang, sure) for end, lang, sure in languages if end >= seg.start_sample]
    return heard[0] if heard else (None, None)


@dataclass(frozen=True)
class _Partial:
    """The open segment as it stands, for a partial callback."""

    segment: Segment


@dataclass
class _Run:
    """One run of a task (a resumed task is a new run): what its callbacks are made from."""

    task: StreamTask
    options: StreamOptions
    assembler: SegmentAssembler
    channels: int = 1
    offset: int = 0  # stream time of this run's first sample
    writes: asyncio.Queue[Any] | None = None
    languages: Languages | None = None
    redacted: RedactedAudio | None = None


class StreamJobs:
    def __init__(self, services: JobServices) -> None:
        self.services = services
        self._running: dict[str, tuple[PullSession | None, asyncio.Task[None]]] = {}

    @property
    def store(self) -> LiveJobStore:
        return self.services.live_jobs

    async def resume(self) -> None:
        await self.sweep()
        for task in await asyncio.to_thread(self.store.resumable_streams):
            logger.info("stream task %s: pulling again after a restart (segment %d)", task.id,
                        task.next_segment)
            self.start(task)

    async def sweep(self) -> None:
        """Redacted audio past ``--audio-retention-h`` goes (at start-up and each new task)."""
        settings = self.services.settings
        await asyncio.to_thread(sweep, settings.data_dir, settings.audio_retention_h * 3600)

    def start(self, task: StreamTask) -> None:
        runner = asyncio.create_task(self._run(task))
        self._running[task.id] = (None, runner)
        runner.add_done_callback(lambda _t: self._running.pop(task.id, None))

    def stop(self, task_id: str) -> bool:
        entry = self._running.get(task_id)
        if entry is None or entry[0] is None:
            return False
        entry[0].stop("stopped by the user")
        return True

    def running(self) -> int:
        return len(self._running)

    async def close(self) -> None:
        for pull, _ in list(self._running.values()):
            if pull is not None:
                pull.drain()
        await asyncio.gather(*(t for _, t in self._running.values()), return_exceptions=True)

    # --- one run ---
    async def _run(self, task: StreamTask) -> None:
        run = self._new_run(task)
        if not await self._admit(run):
            return
        # A resumed task reads on from there: a finite source (a file, VOD HLS) is skipped
        # to it; a live one has moved on by itself. Either way only what is left before
        # audio_end_at is pulled.
        options = run.options
        done_s = run.offset / SAMPLE_RATE
        end_at = options.end_at_s - options.start_from_s if options.end_at_s else None
        if end_at is not None and end_at - done_s <= 0:
            await self._stop(run, NO_DATA, "reached audio_end_at")
            return
        run.writes, run.languages = asyncio.Queue(), []
        settings = self.services.settings
        if options.redacted_audio:
            run.redacted = RedactedAudio(settings.data_dir, task.id, options.redacted_audio,
                                         run.offset)
        writer = asyncio.create_task(self._write(run))
        pull = self._pull(run, done_s, end_at)
        self._running[task.id] = (pull, self._running[task.id][1])
        outcome: PullOutcome = await pull.run()
        run.assembler.receive_end(outcome.audio_samples)
        for seg in run.assembler.segments_to_send():
            run.writes.put_nowait(seg)
        run.writes.put_nowait(None)
        await writer
        if outcome.state == "drained":
            return  # resumed after the restart
        state = "unreachable" if outcome.source_failed else outcome.state
        status, message = _STATUS[state]
        if state in ("failed", "unreachable", "silent", "ended"):
            message = f"{message}: {outcome.reason}"
        await self._stop(run, status, message)

    def _new_run(self, task: StreamTask) -> _Run:
        settings = self.services.settings
        options = stream_options(StreamStartRequest(**task.request),
                                 self.services.engine.languages)
        # A resumed task goes on from the stream time whose words were all sent (a segment's
        # end, or before it when words of it were not final yet): segment numbers go on, and
        # the time the server was down is no gap in stream time. Redacted audio is written
        # per segment: a word that came late would have had its audio written unbeeped, so
        # those segments wait for every word.
        deadline = settings.stream_segment_deadline_s
        offset = int(round(task.stream_offset_s * SAMPLE_RATE))
        assembler = SegmentAssembler(
            int(settings.stream_segment_s * SAMPLE_RATE), first_index=task.next_segment,
            offset_samples=offset,
            deadline_s=None if not deadline or options.redacted_audio else deadline)
        return _Run(task, options, assembler, offset=offset)

    async def _admit(self, run: _Run) -> bool:
        """The source's channels, and room for them; else the task stops (15 or 16)."""
        if run.options.multichannel:
            try:
                run.channels = await probe_channels(self.services, run.options.audio_url, {})
            except EarmarkError as err:  # the source could not be opened
                await self._stop(run, NO_DATA, f"{_STATUS['unreachable'][1]}: {err.message}")
                return False
        sessions = self.services.sessions
        if sessions.over_capacity(run.channels) is not None or sessions.over_pull_limit():
            await self._stop(run, CAPACITY,
                             "server capacity reached; start the stream again later")
            return False
        return True

    def _pull(self, run: _Run, done_s: float, end_at: float | None) -> PullSession:
        settings, options = self.services.settings, run.options
        on_event, on_progress = self._listeners(run)
        return PullSession(self.services, url=options.audio_url, headers={}, on_event=on_event,
                           silence_timeout_s=settings.stream_no_data_s,
                           max_audio_s=None if end_at is None else end_at - done_s,
                           skip_s=0.0 if done_s else options.start_from_s,
                           resume_at_s=options.start_from_s + done_s if done_s else 0.0,
                           vad_threshold=options.vad_threshold, on_progress=on_progress,
                           hotwords=(FILLER_PROMPT,) if options.disfluencies else (),
                           language=options.language_code, diarize=options.speaker_labels,
                           speakers=options.speakers_expected,
                           on_audio=run.redacted.receive if run.redacted else None,
                           channels=run.channels, whole_sentences=options.text.active,
                           early_finals=True)  # a segment goes once its words are final

    def _listeners(self, run: _Run) -> tuple[Any, Any]:
        """The pull's event and progress callbacks: words into the assembler, segments and
        partials (at most one a second) onto the writer's queue."""
        assembler, writes, languages = run.assembler, run.writes, run.languages
        assert writes is not None and languages is not None
        partials = self.services.settings.stream_partial_callbacks and run.redacted is None
        last_partial: list[Any] = [0.0, ""]  # when the last partial went, and its text

        def on_event(event: Event) -> None:
            if not isinstance(event, Transcript):
                return
            if not event.is_final and partials:
                now = time.monotonic()
                if now - last_partial[0] >= PARTIAL_EVERY_S:
                    seg = assembler.open_segment(event.words)
                    if seg.words and seg.text != last_partial[1]:
                        last_partial[:] = [now, seg.text]
                        writes.put_nowait(_Partial(seg))
            if event.is_final:
                assembler.receive_words(event.words)
                if event.language and event.words:
                    languages.append((event.end_sample + run.offset, event.language,
                                      event.language_confidence))

        def on_progress(settled: int, received: int) -> None:
            assembler.receive_settled(settled, received, time.monotonic())
            for seg in assembler.segments_to_send():
                writes.put_nowait(seg)

        return on_event, on_progress

    # --- callbacks ---
    async def _write(self, run: _Run) -> None:
        """Writes segment callbacks to the outbox in order (one thread hop each)."""
        engine, options = self.services.engine, run.options
        story = StreamStory(engine, options) \
            if options.summarization or options.auto_chapters else None
        topics = StreamTopics(engine.tag_worker, options) \
            if options.iab_categories or options.topics else None
        assert run.writes is not None
        while (seg := await run.writes.get()) is not None:
            if isinstance(seg, _Partial):
                await self._partial(run, seg.segment)
                continue
            fields = await self._analysed(run, seg)
            seg = fields.pop("segment")
            summary, chapters = await story.update(seg.words) if story else (None, ())
            found = await topics.update(seg.words) if topics else None
            language, sure = _heard(run.languages or [], seg)
            if (options.language_threshold and seg.words and sure is not None
                    and sure < options.language_threshold):
                await self._record(run, seg, error_callback(
                    run.task.id, seg, options, f"the detected language ({language}) has "
                    f"confidence {sure:.2f}, below language_confidence_threshold "
                    f"{options.language_threshold:g}"))
                continue
            await self._record(run, seg, segment_callback(
                run.task.id, seg, options, summary=summary, chapters=chapters, topics=found,
                channels=run.channels, language=language, language_confidence=sure,
                speech_model=engine.model_name, **fields))  # what runs, whatever was asked

    async def _partial(self, run: _Run, seg: Segment) -> None:
        language, sure = _heard(run.languages or [], seg)
        threshold = run.options.language_threshold
        if threshold and sure is not None and sure < threshold:
            return  # its final is an error callback; no partial says otherwise
        body = orjson.dumps(segment_callback(
            run.task.id, seg, run.options, speech_model=self.services.engine.model_name,
            partial=True, language=language, language_confidence=sure)).decode()
        if await asyncio.to_thread(self.store.record_partial, run.task, body=body):
            self.services.webhooks.wake()

    async def _analysed(self, run: _Run, seg: Segment) -> dict[str, Any]:
        """The segment after the text options, and what they and content safety found."""
        options, engine = run.options, self.services.engine
        worker = engine.understanding
        out: dict[str, Any] = {"segment": seg, "sentiment": (), "entities": (),
                               "highlights": (), "safety": (), "redacted_audio_url": None}
        if run.redacted is not None:
            # Words of the next segment may start in this one: their audio is beeped here.
            context = seg.words + seg.overhang
            spans = (await asyncio.wrap_future(worker.submit(context, options.text))).words \
                if context else ()
            # The hosted API links an absolute URL; --public-url gives this server's.
            out["redacted_audio_url"] = self.services.settings.public_url.rstrip("/") + \
                await run.redacted.write(seg, spans)
        if options.text.active and seg.words:
            done = await asyncio.wrap_future(worker.submit(seg.words, options.text))
            out["segment"] = seg = replace(seg, words=done.words)
            out["entities"], out["highlights"] = done.entities, done.highlights
            if options.text.sentiment:  # one result per sentence, as the hosted API
                parts = sentences_of(seg.words)
                found = await asyncio.wrap_future(worker.sentiments(
                    [" ".join(w.text.strip() for w in p) for p in parts]))
                out["sentiment"] = tuple(SentenceSentiment(len(p), f)
                                         for p, f in zip(parts, found, strict=True))
        if options.content_safety and seg.words and engine.tag_worker is not None:
            said = " ".join(w.text.strip() for w in seg.words)
            out["safety"] = tuple(await asyncio.wrap_future(
                engine.tag_worker.content_safety(said)))
        return out

    async def _record(self, run: _Run, seg: Segment, callback: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.record_segment, run.task, index=seg.index,
                                end_s=seg.complete_until / SAMPLE_RATE,
                                body=orjson.dumps(callback).decode())
        self.services.webhooks.wake()

    async def _stop(self, run: _Run, status: int, message: str) -> None:
        index = run.assembler.next_index
        start = index * run.assembler.segment_samples
        body = orjson.dumps(stop_callback(run.task.id, index, start, start, run.options,
                                          status, message)).decode()
        await asyncio.to_thread(self.store.stop_stream, run.task, status=status,
                                reason=message, body=body)
        self.services.webhooks.wake()
        logger.info("stream task %s stopped: %d %s", run.task.id, status, message)
