"""Runs file jobs: a bounded set of workers over a FIFO of job ids, resumed after a restart.

- At start-up every scheduled or in-progress job in the store is queued again, oldest first: a
  job interrupted by a crash runs again from its stored audio (its result is written in one
  transaction with its final status, so nothing is half-done).
- A job whose run was cut short by the process dying ``MAX_RUNS`` times is failed, with the
  reason, rather than retried: it may be what kills the process, and the next start must
  stay up. (Decoding, the likeliest culprit, runs in a child process: see audio_file.py.)
- Shutdown cancels the workers and leaves running jobs ``in_progress`` for the next start;
  a run stopped that way is not counted.
- Retention runs here too: old audio, then old conversations, are deleted on a timer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from earmark.config import Settings
from earmark.core import SAMPLE_RATE
from earmark.core.chunking import speech_regions
from earmark.core.messages import Message, split_by_speaker
from earmark.core.segmenter import SegmenterConfig
from earmark.core.summary import summary_of
from earmark.core.text_options import TextOptions
from earmark.dialects.deepgram_prerecorded import (
    PrerecordedOptions,
    prerecorded_body,
    topic_passages,
    topic_segment,
)
from earmark.errors import BadAudio, is_disk_full
from earmark.filejobs.audio_file import DecodedAudio, decode
from earmark.filejobs.summaries import ConversationSummaries
from earmark.filejobs.transcriber import FileOptions, transcribe_file
from earmark.inference.engine import Engine
from earmark.inference.speakers import diarize
from earmark.inference.vad import SileroVad
from earmark.store.jobs import Job, JobStore

logger = logging.getLogger(__name__)

MAX_RUNS = 2
STORAGE_RETRY_S = 5.0
RETENTION_CHECK_S = 600.0


def message_record(message: Message) -> dict[str, Any]:
    """What the store keeps for one sentence: file-relative seconds."""
    def s(sample: int) -> float:
        return round(sample / SAMPLE_RATE, 3)

    return {
        "speaker": message.speaker,
        "channel": message.channel,
        "text": message.text,
        "start_s": s(message.start_sample),
        "end_s": s(message.end_sample),
        "words": [[w.text.strip(), s(w.start_sample), s(w.end_sample), round(w.probability, 3)]
                  for w in message.words if w.text.strip()],
    }


async def listen_topics(tag_worker: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deepgram's topic segments for stored sentences: each passage's IAB Content Taxonomy
    topics, by the socket's topic model (``topics=true`` there); passages with none are left
    out."""
    segments = []
    for text, first, last in topic_passages(records):
        iab, _ = await asyncio.wrap_future(tag_worker.topics(text))
        if iab:
            segments.append(topic_segment(text, first, last,
                                          [(t.label, t.relevance) for t in iab]))
    return segments


async def listen_summary(tag_worker: Any, records: list[dict[str, Any]]) -> str:
    """The extractive summary of stored sentences (the socket's ``Summary``, for files)."""
    texts = [r["text"] for r in records if r["text"].strip()]
    if not texts:
        return ""
    vectors = await asyncio.wrap_future(tag_worker.embed(texts))
    return summary_of(texts, vectors)


def mark_languages(records: list[dict[str, Any]], heard: list[Any]) -> None:
    """Each stored sentence gets the language (and its probability) of the decode that
    heard its first word: the narrowest decode span holding it, on its channel."""
    for record in records:
        at = int(record["start_s"] * SAMPLE_RATE)
        spans = [h for h in heard if h[0] == record.get("channel", 1) and h[1] <= at < h[2]]
        if spans:
            _, _, _, language, sure = min(spans, key=lambda h: h[2] - h[1])
            record["language"], record["language_confidence"] = language, sure


class JobRunner:
    def __init__(self, store: JobStore, engine: Engine, settings: Settings,
                 notify: Callable[[], None],
                 summaries: ConversationSummaries | None = None) -> None:
        self.store = store
        self.summaries = summaries  # enableSummary: computed once the job completes
        self.engine = engine
        self.settings = settings
        self.notify = notify  # wakes the webhook dispatcher after a status change
        # (priority, arrival, job id): a synchronous request's job (a caller waits on the
        # line) runs before queued file jobs.
        self._queue: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        self._arrivals = itertools.count()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self.completed = 0
        self.failed = 0
        self._vads: list[SileroVad] = []

    def enqueue(self, job_id: str, *, urgent: bool = False) -> None:
        self._queue.put_nowait((0 if urgent else 1, next(self._arrivals), job_id))

    async def wait(self, job_id: str) -> None:
        """Returns once the job is completed or failed in this process (the caller reads the
        store for which). Cancelled with the caller."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        try:
            await future
        finally:
            waiting = self._waiters.get(job_id, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._waiters.pop(job_id, None)

    def _finished(self, job_id: str) -> None:
        for future in self._waiters.get(job_id, []):
            if not future.done():
                future.set_result(None)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> int:
        return len(self._running)

    def cancel(self, job_id: str) -> None:
        """Stops a running job (its conversation was deleted)."""
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()

    async def prepare(self) -> None:
        """Loads the workers' VAD instances and queues every unfinished job (a restart)."""
        for job in await asyncio.to_thread(self.store.unfinished):
            # Uploads live in the node's own data dir: on a shared database, another node's
            # unfinished job is that node's to resume (its audio is not here).
            shared = bool(self.settings.database_url)
            if shared and job.audio_path is not None and not Path(job.audio_path).exists():
                logger.info("file job %s is another node's (its audio is not here)", job.id)
                continue
            self.enqueue(job.id)
        self._vads = [await asyncio.to_thread(SileroVad) for _ in range(self.settings.job_workers)]

    def start(self) -> list[asyncio.Task[None]]:
        """The worker and retention tasks, created at once (the loop's task count is steady
        from the moment the server is ready); the caller cancels them at shutdown."""
        tasks = [asyncio.create_task(self._worker(vad), name="file-job-worker")
                 for vad in self._vads]
        tasks.append(asyncio.create_task(self._retention(), name="retention"))
        return tasks

    async def _worker(self, vad: SileroVad) -> None:
        while True:
            _, _, job_id = await self._queue.get()
            task = asyncio.create_task(self._process(job_id, vad))
            self._running[job_id] = task
            try:
                await asyncio.wait({task})  # a deleted job's task ends; this worker goes on
            except asyncio.CancelledError:  # shutdown: stop the job; it stays in_progress
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                self.store.release(job_id)  # a clean stop is not a crash
                raise
            finally:
                self._running.pop(job_id, None)
                self._finished(job_id)
            if not task.cancelled() and task.exception() is not None:
                logger.error("file job %s: %r", job_id, task.exception())
                if is_disk_full(task.exception()):  # type: ignore[arg-type]
                    # Its state could not be written: run it again once there is room
                    # (it was left scheduled forever).
                    asyncio.get_running_loop().call_later(STORAGE_RETRY_S, self.enqueue,
                                                          job_id)

    async def _process(self, job_id: str, vad: SileroVad) -> None:
        job = await asyncio.to_thread(self.store.start, job_id)
        self.notify()
        if job is None:
            return
        if job.runs > MAX_RUNS:
            await self._fail(job, f"the server stopped unexpectedly {MAX_RUNS} times while "
                                  "this job ran; it is not retried")
            return
        started = time.perf_counter()
        try:
            messages, heard = await self._transcribe(job, vad)
        except BadAudio as exc:
            await self._fail(job, exc.message)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("file job %s failed", job.id)
            await self._fail(job, "transcription failed with an internal error")
            return
        deliveries: list[tuple[str, str]] = []
        dialect = job.options.get("dialect")
        if dialect == "deepgram":
            listen = PrerecordedOptions.from_json(job.options["deepgram"])
            records = await self._text_stage(listen, messages)
            if listen.detect_language:
                mark_languages(records, heard)
            if listen.callback:
                summary = (await listen_summary(self.engine.tag_worker, records)
                           if listen.summarize else "")
                topics = (await listen_topics(self.engine.tag_worker, records)
                          if listen.topics else [])
                body = prerecorded_body(
                    request_id=job.id, created=job.created, duration_s=job.duration_s,
                    channels=job.channels, sha256=job.options.get("sha256", ""),
                    model_name=self.engine.model_name, records=records, options=listen,
                    summary=summary, topics=topics)
                deliveries.append((listen.callback, orjson.dumps(body).decode()))
        else:
            records = [message_record(m) for m in messages]
            if job.options.get("markLanguages"):
                mark_languages(records, heard)
            if job.options.get("detectEntities"):
                await self._entities(job, messages, records)
        done = await asyncio.to_thread(self.store.complete, job.id, records, deliveries)
        if done:
            self.completed += 1
            if self.settings.audio_retention_h == 0:
                await asyncio.to_thread(self.store.forget_audio, job.id)
            elapsed = time.perf_counter() - started
            logger.info("file job %s completed: %.1f s of audio in %.1f s (%d messages)",
                        job.id, job.duration_s, elapsed, len(messages))
        self.notify()
        if done and job.options.get("enableSummary") and self.summaries is not None:
            try:
                await self.summaries.get(job.owner, job.conversation_id)
            except Exception:  # the summary is asked again on GET; the job is done
                logger.exception("summary of conversation %s failed", job.conversation_id)

    async def _transcribe(self, job: Job, vad: SileroVad) -> tuple[list[Message], list[Any]]:
        """The messages, and (channel, start, end, language, probability) per decode."""
        if job.audio_path is None or not Path(job.audio_path).exists():
            raise BadAudio("the job's audio is no longer stored")
        per_channel = bool(job.options.get("enableSeparateRecognitionPerChannel"))
        audio = await asyncio.to_thread(decode, job.audio_path, job.audio_path + ".pcm",
                                        keep_channels=per_channel,
                                        max_seconds=self.settings.max_job_audio_s)
        try:
            heard: list[Any] = []
            return await self._recognise(job, vad, audio, heard), heard
        finally:
            audio.remove()

    async def _recognise(self, job: Job, vad: SileroVad, audio: DecodedAudio,
                         heard: list[Any]) -> list[Message]:
        scheduler = self.engine.scheduler
        assert scheduler is not None
        options = FileOptions(hotwords=job.options.get("hotwords"),
                              vad_threshold=self.settings.vad_threshold,
                              language=job.options.get("language"),
                              music_threshold=self.settings.music_threshold)
        messages, probs = await transcribe_file(scheduler, vad, audio, options, heard)
        if job.options.get("enableSpeakerDiarization") and messages:
            regions = speech_regions(probs[0], SegmenterConfig(
                threshold=self.settings.vad_threshold,
                neg_threshold=max(0.01, self.settings.vad_threshold - 0.15)))
            track = await asyncio.to_thread(diarize, self.engine.speakers, audio.row(0),
                                            regions, job.options.get("diarizationSpeakerCount"))
            messages = split_by_speaker(
                messages, lambda w: track.speaker_at((w.start_sample + w.end_sample) // 2))
        return messages

    async def _text_stage(self, options: PrerecordedOptions,
                          messages: list[Message]) -> list[dict[str, Any]]:
        """Records of the messages after redaction, replacement, profanity masking, and
        with each one's sentiment and entities: the text is changed before it is stored."""
        if not options.text_stage:
            return [message_record(m) for m in messages]
        worker = self.engine.understanding
        wanted = TextOptions(replace=options.replace, redact=frozenset(options.redact),
                             profanity=options.profanity_filter, sentiment=options.sentiment,
                             entities=options.detect_entities, numerals=options.numerals)
        records = []
        for message in messages:
            found = await asyncio.wrap_future(worker.submit(message.words, wanted))
            record = message_record(replace(message, words=found.words))
            if found.sentiment is not None:
                record["sentiment"] = [found.sentiment.label, found.sentiment.score]
            if options.detect_entities:
                record["entities"] = [[e.label, e.text, round(e.start_sample / SAMPLE_RATE, 3),
                                       round(e.end_sample / SAMPLE_RATE, 3)]
                                      for e in found.entities]
            records.append(record)
        return records

    async def _entities(self, job: Job, messages: list[Message],
                        records: list[dict[str, Any]]) -> None:
        """spaCy's entities and the request's custom entities, per message."""
        worker = self.engine.understanding
        custom = [(e["customType"], e["text"].lower()) for e in job.options.get("entities", ())]
        for message, record in zip(messages, records, strict=True):
            found = await asyncio.wrap_future(
                worker.submit(message.words, TextOptions(entities=True)))
            record["entities"] = [[e.label.lower(), e.text] for e in found.entities]
            lowered = record["text"].lower()
            for kind, phrase in custom:
                at = lowered.find(phrase)
                if at >= 0:
                    record["entities"].append([kind, record["text"][at:at + len(phrase)]])

    async def _fail(self, job: Job, reason: str) -> None:
        if await asyncio.to_thread(self.store.fail, job.id, reason):
            self.failed += 1
            if self.settings.audio_retention_h == 0:
                await asyncio.to_thread(self.store.forget_audio, job.id)
            logger.warning("file job %s failed: %s", job.id, reason)
        self.notify()

    async def _retention(self) -> None:
        s = self.settings
        while True:
            now = time.time()
            paths = await asyncio.to_thread(
                self.store.expire, audio_before=now - s.audio_retention_h * 3600,
                results_before=now - s.result_retention_h * 3600)
            for path in paths:
                Path(path).unlink(missing_ok=True)
            if paths:
                logger.info("retention: deleted %d audio files", len(paths))
            await asyncio.sleep(RETENTION_CHECK_S)
