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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from earmark.api.auth import request_owner, request_principal
from earmark.api.webhooks import check_webhook_url
from earmark.auth import limit
from earmark.core import SAMPLE_RATE
from earmark.core.audio import AudioBuffer
from earmark.core.events import Event, Transcript, Word
from earmark.core.messages import Message
from earmark.core.redacted_audio import beep_out, redacted_spans
from earmark.core.segments import Segment, SegmentAssembler
from earmark.core.story import StorySoFar
from earmark.core.summary import chapter_spans, pick_sentences, summary_of, summary_size
from earmark.core.text_options import TextOptions
from earmark.dialects.stream_jobs import (
    CAPACITY,
    ERROR,
    FILLER_PROMPT,
    NO_DATA,
    USER_STOPPED,
    Chapter,
    SegmentTopics,
    StreamOptions,
    StreamStartRequest,
    error_callback,
    segment_callback,
    sentences_of,
    stop_callback,
    stream_options,
)
from earmark.errors import EarmarkError, InvalidParameter, NotFound, NotReady
from earmark.ingest.admission import over_capacity
from earmark.ingest.pull_session import PullOutcome, PullSession, probe_channels
from earmark.ingest.url_safety import check_url, parse_networks
from earmark.store.live_jobs import StreamTask
from earmark.store.redacted_audio import FORMATS, segment_path, sweep, write_segment

logger = logging.getLogger(__name__)
router = APIRouter()
# The task routes, served at /audio-stream/... and at seed 004's own base path
# (/serve/api/v2/audio-stream/...), so a user changes only the host.
streams = APIRouter()
SEED_BASE = "/serve/api/v2"
T = TypeVar("T")

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


def _heard(languages: list[tuple[int, str, float | None]],
           seg: Segment) -> tuple[str | None, float | None]:
    """The language (and its P) of the first final that ends in the segment or after it."""
    heard = [(lang, sure) for end, lang, sure in languages if end >= seg.start_sample]
    return heard[0] if heard else (None, None)


@dataclass(frozen=True)
class _Partial:
    """The open segment as it stands, for a partial callback."""

    segment: Segment


class StreamJobs:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._running: dict[str, tuple[PullSession | None, asyncio.Task[None]]] = {}

    @property
    def store(self) -> Any:
        return self.app.state.live_jobs

    async def resume(self) -> None:
        await self.sweep()
        for task in await asyncio.to_thread(self.store.resumable_streams):
            logger.info("stream task %s: pulling again after a restart (segment %d)", task.id,
                        task.next_segment)
            self.start(task)

    async def sweep(self) -> None:
        """Redacted audio past ``--audio-retention-h`` goes (at start-up and each new task)."""
        settings = self.app.state.settings
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

    async def _run(self, task: StreamTask) -> None:
        settings = self.app.state.settings
        options = stream_options(StreamStartRequest(**task.request),
                                 self.app.state.engine.languages)
        segment = int(settings.stream_segment_s * SAMPLE_RATE)
        # A resumed task goes on from the stream time whose words were all sent (a segment's
        # end, or before it when words of it were not final yet): segment numbers go on, and
        # the time the server was down is no gap in stream time. Redacted audio is written
        # per segment: a word that came late would have had its audio written unbeeped, so
        # those segments wait for every word.
        deadline = settings.stream_segment_deadline_s
        resume_sample = int(round(task.stream_offset_s * SAMPLE_RATE))
        assembler = SegmentAssembler(
            segment, first_index=task.next_segment, offset_samples=resume_sample,
            deadline_s=None if not deadline or options.redacted_audio else deadline)
        channels = 1
        if options.multichannel:
            try:
                channels = await probe_channels(self.app, options.audio_url, {})
            except EarmarkError as err:  # the source could not be opened
                await self._stop(task, options, assembler, NO_DATA,
                                 f"{_STATUS['unreachable'][1]}: {err.message}")
                return
        if over_capacity(self.app, channels) is not None or \
                self._pulls() >= settings.max_url_pulls:
            await self._stop(task, options, assembler, CAPACITY,
                             "server capacity reached; start the stream again later")
            return
        writes: asyncio.Queue[Any] = asyncio.Queue()
        # (final's end, language it was decoded in, P(language) when detected)
        languages: list[tuple[int, str, float | None]] = []
        assembler_offset = resume_sample
        redacted = _RedactedAudio(settings.data_dir, task.id, options.redacted_audio,
                                  assembler_offset) if options.redacted_audio else None
        writer = asyncio.create_task(self._write(task, writes, languages, redacted, channels))

        partials = settings.stream_partial_callbacks and redacted is None
        last_partial: list[Any] = [0.0, ""]  # when the last partial went, and its text

        def on_event(event: Event) -> None:
            if isinstance(event, Transcript) and not event.is_final and partials:
                now = time.monotonic()
                if now - last_partial[0] >= PARTIAL_EVERY_S:
                    seg = assembler.open_segment(event.words)
                    if seg.words and seg.text != last_partial[1]:
                        last_partial[:] = [now, seg.text]
                        writes.put_nowait(_Partial(seg))
            if isinstance(event, Transcript) and event.is_final:
                assembler.receive_words(event.words)
                if event.language and event.words:
                    languages.append((event.end_sample + assembler_offset, event.language,
                                      event.language_confidence))

        def on_progress(settled: int, received: int) -> None:
            assembler.receive_settled(settled, received, time.monotonic())
            for seg in assembler.segments_to_send():
                writes.put_nowait(seg)

        # A resumed task reads on from there: a finite source (a file, VOD HLS) is skipped
        # to it; a live one has moved on by itself. Either way only what is left before
        # audio_end_at is pulled.
        done_s = resume_sample / SAMPLE_RATE
        end_at = options.end_at_s - options.start_from_s if options.end_at_s else None
        if end_at is not None and end_at - done_s <= 0:
            await self._stop(task, options, assembler, NO_DATA, "reached audio_end_at")
            return
        pull = PullSession(self.app, url=options.audio_url, headers={}, on_event=on_event,
                           silence_timeout_s=settings.stream_no_data_s,
                           max_audio_s=None if end_at is None else end_at - done_s,
                           skip_s=0.0 if done_s else options.start_from_s,
                           resume_at_s=options.start_from_s + done_s if done_s else 0.0,
                           vad_threshold=options.vad_threshold, on_progress=on_progress,
                           hotwords=(FILLER_PROMPT,) if options.disfluencies else (),
                           language=options.language_code, diarize=options.speaker_labels,
                           speakers=options.speakers_expected,
                           on_audio=redacted.receive if redacted else None,
                           channels=channels, whole_sentences=options.text.active,
                           early_finals=True)  # a segment goes once its words are final
        self._running[task.id] = (pull, self._running[task.id][1])
        outcome: PullOutcome = await pull.run()
        assembler.receive_end(outcome.audio_samples)
        for seg in assembler.segments_to_send():
            writes.put_nowait(seg)
        writes.put_nowait(None)
        await writer
        if outcome.state == "drained":
            return  # resumed after the restart
        state = "unreachable" if outcome.source_failed else outcome.state
        status, message = _STATUS[state]
        if state in ("failed", "unreachable", "silent", "ended"):
            message = f"{message}: {outcome.reason}"
        await self._stop(task, options, assembler, status, message)

    async def _write(self, task: StreamTask, writes: asyncio.Queue[Any],
                     languages: list[tuple[int, str, float | None]],
                     redacted: _RedactedAudio | None = None, channels: int = 1) -> None:
        """Writes segment callbacks to the outbox in order (one thread hop each)."""
        options = stream_options(StreamStartRequest(**task.request),
                                 self.app.state.engine.languages)
        worker = self.app.state.engine.understanding
        story = _Story(self.app.state.engine, options) \
            if options.summarization or options.auto_chapters else None
        found_topics = _Topics(self.app.state.engine.tag_worker, options) \
            if options.iab_categories or options.topics else None
        model = self.app.state.engine.model_name  # what runs, whatever speech_models asked
        while (seg := await writes.get()) is not None:
            if isinstance(seg, _Partial):
                open_seg = seg.segment
                language, sure = _heard(languages, open_seg)
                if (options.language_threshold and sure is not None
                        and sure < options.language_threshold):
                    continue  # its final is an error callback; no partial says otherwise
                body = orjson.dumps(segment_callback(
                    task.id, open_seg, options, speech_model=model, partial=True,
                    language=language, language_confidence=sure)).decode()
                if await asyncio.to_thread(self.store.record_partial, task, body=body):
                    self.app.state.webhooks.wake()
                continue
            sentiment, entities, highlights = None, (), ()
            audio_url = None
            if redacted is not None:
                # Words of the next segment may start in this one: their audio is beeped here.
                context = seg.words + seg.overhang
                spans = (await asyncio.wrap_future(worker.submit(context, options.text))).words \
                    if context else ()
                # The hosted API links an absolute URL; --public-url gives this server's.
                audio_url = self.app.state.settings.public_url.rstrip("/") + \
                    await redacted.write(seg, spans)
            if options.text.active and seg.words:
                done = await asyncio.wrap_future(worker.submit(seg.words, options.text))
                seg = replace(seg, words=done.words)
                sentiment = (done.sentiment.label, done.sentiment.score) \
                    if done.sentiment else None
                entities = tuple((e.label, e.text, e.start_sample, e.end_sample)
                                 for e in done.entities)
                highlights = tuple((h.text, h.rank, h.times) for h in done.highlights)
                if options.text.sentiment:  # one result per sentence, as the hosted API
                    parts = sentences_of(seg.words)
                    found = await asyncio.wrap_future(worker.sentiments(
                        [" ".join(w.text.strip() for w in p) for p in parts]))
                    sentiment = tuple((len(p), f.label, f.score)
                                      for p, f in zip(parts, found, strict=True))
            safety: tuple[tuple[str, float], ...] = ()
            tagger = self.app.state.engine.tag_worker
            if options.content_safety and seg.words and tagger is not None:
                said = " ".join(w.text.strip() for w in seg.words)
                safety = tuple(await asyncio.wrap_future(tagger.content_safety(said)))
            summary, chapters = await story.update(seg.words) if story else (None, ())
            topics = await found_topics.update(seg.words) if found_topics else None
            language, sure = _heard(languages, seg)
            if (options.language_threshold and seg.words and sure is not None
                    and sure < options.language_threshold):
                body = orjson.dumps(error_callback(
                    task.id, seg, options, f"the detected language ({language}) has confidence "
                    f"{sure:.2f}, below language_confidence_threshold "
                    f"{options.language_threshold:g}")).decode()
                await asyncio.to_thread(self.store.record_segment, task, index=seg.index,
                                        end_s=seg.complete_until / SAMPLE_RATE, body=body)
                self.app.state.webhooks.wake()
                continue
            body = orjson.dumps(segment_callback(task.id, seg, options, sentiment=sentiment,
                                                 entities=entities, highlights=highlights,
                                                 safety=safety, summary=summary,
                                                 chapters=chapters, topics=topics,
                                                 redacted_audio_url=audio_url,
                                                 channels=channels, language=language,
                                                 language_confidence=sure,
                                                 speech_model=model)).decode()
            await asyncio.to_thread(self.store.record_segment, task, index=seg.index,
                                    end_s=seg.complete_until / SAMPLE_RATE, body=body)
            self.app.state.webhooks.wake()

    async def _stop(self, task: StreamTask, options: StreamOptions,
                    assembler: SegmentAssembler, status: int, message: str) -> None:
        index = assembler.next_index
        start = index * assembler.segment_samples
        body = orjson.dumps(stop_callback(task.id, index, start, start, options, status,
                                          message)).decode()
        await asyncio.to_thread(self.store.stop_stream, task, status=status, reason=message,
                                body=body)
        self.app.state.webhooks.wake()
        logger.info("stream task %s stopped: %d %s", task.id, status, message)

    def _pulls(self) -> int:
        return sum(1 for c in self.app.state.sessions if c.options.url is not None)


class _RedactedAudio:
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


class _Topics:
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


class _Story:
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
            for a, b in chapter_spans(vectors):
                part = texts[a:b]
                headline = part[pick_sentences(vectors[a:b], 1,
                                               min_words=[len(t.split()) for t in part])[0]]
                chapters.append(Chapter(found[a].start_sample, found[b - 1].end_sample,
                                        headline, await self._gist(found[a:b], headline),
                                        summary_of(part, vectors[a:b])))
        return summary, tuple(chapters)

    async def _summary(self, found: list[Message], texts: list[str],
                       vectors: np.ndarray) -> str:
        kind = self.options.summary_type
        if kind in ("headline", "gist"):
            best = texts[pick_sentences(vectors, 1, min_words=[len(t.split()) for t in texts])[0]]
            return best if kind == "headline" else await self._gist(found, best)
        if kind not in ("bullets", "bullets_verbose"):
            return summary_of(texts, vectors)
        size = summary_size(len(texts))
        if kind == "bullets_verbose":  # the hosted API's longer list: twice the bullets
            size = min(len(texts), 2 * size)
        picks = pick_sentences(vectors, size, min_words=[len(t.split()) for t in texts])
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


def _ok(data: Any) -> dict[str, Any]:
    return {"code": 200, "message": "success", "data": data}


class StartData(BaseModel):
    task_id: str
    message: str
    ignored: list[str] | None = Field(None, description="options sent for a feature left off "
                                      "(e.g. summary_type without summarization): no effect")


class Envelope(BaseModel, Generic[T]):
    """Seed 004's response wrapper."""

    code: int = 200
    message: str = "success"
    data: T


class TaskData(BaseModel):
    task_id: str
    state: str = Field(description="running | stopped")
    status: int | None = Field(None, description="the last callback's status once stopped")
    reason: str | None = None
    audio_url: str
    created: float
    segments_sent: int
    stream_seconds: float


StartOut = Envelope[StartData]
TaskOut = Envelope[TaskData]
TaskListOut = Envelope[list[TaskData]]


class WebhookSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=4096, description="where stream-job callbacks "
                            "go (null: use the server's --stream-webhook-url)")


def _task_data(task: StreamTask) -> TaskData:
    return TaskData(task_id=task.id, state=task.state, status=task.status, reason=task.reason,
                    audio_url=task.request["audio_url"], created=task.created,
                    segments_sent=task.next_segment,
                    stream_seconds=round(task.stream_offset_s, 3))


def _ready(request: Request) -> Any:
    app = request.app
    if app.state.live_jobs is None or not app.state.engine.ready or app.state.draining:
        raise NotReady("the server is starting or shutting down")
    return app.state.live_jobs


@streams.post("/audio-stream/start", response_model=StartOut, response_model_exclude_none=True,
             summary="Start transcribing a live stream in 5-second segments")
async def start_stream(request: Request, body: StreamStartRequest) -> dict[str, Any]:
    store = _ready(request)
    principal = request_principal(request)
    owner = principal.owner
    settings = request.app.state.settings
    options = stream_options(body, request.app.state.engine.languages)
    for name, param in (("content_safety", "content_safety"),
                        ("summarization", "summarization"), ("auto_chapters", "auto_chapters"),
                        ("iab_categories", "iab_categories"), ("topics", "custom_topics")):
        if getattr(options, name) and request.app.state.engine.tag_worker is None:
            raise InvalidParameter(f"{param} needs the sentence model, which this server "
                                   "runs without (--no-tagging)", param=param)
    await asyncio.to_thread(check_url, body.audio_url,
                            parse_networks(settings.url_allow_networks), param="audio_url")
    webhook = await asyncio.to_thread(store.webhook_url, owner) or settings.stream_webhook_url
    if not webhook:
        raise InvalidParameter("no webhook is configured for this key: PUT "
                               "/v1/settings/webhook {\"url\": ...} first", param="webhook")
    task = await asyncio.to_thread(store.create_stream, owner, body.model_dump(), webhook,
                                   limit(settings, principal, "max_streams"))
    request.app.state.stream_jobs.start(task)
    if options.redacted_audio:
        await request.app.state.stream_jobs.sweep()
    return _ok({"task_id": task.id, "message": "Audio stream transcription started "
                "successfully", **({"ignored": list(options.ignored)} if options.ignored
                                   else {})})


@streams.post("/audio-stream/stop/{task_id}", response_model=StartOut,
             summary="Stop a stream task (its last callback has status 14)")
async def stop_stream(request: Request, task_id: str) -> dict[str, Any]:
    store = _ready(request)
    task = await asyncio.to_thread(store.get_stream, request_owner(request), task_id)
    if task.state != "running":
        return _ok({"task_id": task.id, "message": "the stream task had already stopped"})
    request.app.state.stream_jobs.stop(task.id)
    return _ok({"task_id": task.id, "message": "Audio stream transcription is stopping"})


@streams.get("/audio-stream", response_model=TaskListOut, summary="This key's running tasks")
async def list_streams(request: Request) -> dict[str, Any]:
    store = _ready(request)
    tasks = await asyncio.to_thread(store.streams, request_owner(request), running_only=True)
    return _ok([_task_data(t) for t in tasks])


@streams.get("/audio-stream/{task_id}", response_model=TaskOut, summary="One stream task")
async def get_stream(request: Request, task_id: str) -> dict[str, Any]:
    store = _ready(request)
    task = await asyncio.to_thread(store.get_stream, request_owner(request), task_id)
    return _ok(_task_data(task).model_dump())


@streams.get("/audio-stream/{task_id}/segments/{index}/redacted-audio",
            summary="A segment's audio with every redacted word beeped (redact_pii_audio)",
            response_class=FileResponse,
            responses={200: {"content": {t: {} for t in FORMATS.values()}}})
async def get_redacted_audio(request: Request, task_id: str, index: int) -> FileResponse:
    store = _ready(request)
    task = await asyncio.to_thread(store.get_stream, request_owner(request), task_id)
    fmt = (task.request.get("redact_pii_audio_quality") or "mp3") \
        if task.request.get("redact_pii_audio") else None
    path = segment_path(request.app.state.settings.data_dir, task.id, index, fmt or "mp3")
    if fmt is None or index < 0 or not path.is_file():
        raise NotFound(f"no redacted audio for segment {index} of stream task {task.id} (it "
                       "was not asked for, is not written yet, or is past retention)")
    return FileResponse(path, media_type=FORMATS[fmt],
                        filename=f"{task.id}-{index}-redacted.{fmt}")


@router.get("/v1/settings/webhook", response_model=WebhookSetting,
            summary="This key's stream-job callback URL")
async def get_webhook_setting(request: Request) -> WebhookSetting:
    store = _ready(request)
    return WebhookSetting(url=await asyncio.to_thread(store.webhook_url,
                                                      request_owner(request)))


@router.put("/v1/settings/webhook", response_model=WebhookSetting,
            summary="Set this key's stream-job callback URL")
async def put_webhook_setting(request: Request, body: WebhookSetting) -> WebhookSetting:
    store = _ready(request)
    owner = request_owner(request)
    if body.url:
        await asyncio.to_thread(check_webhook_url, body.url, request.app.state.settings, "url")
    await asyncio.to_thread(store.set_webhook_url, owner, body.url or None)
    return body
