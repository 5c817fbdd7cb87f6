"""A server-side live session on a URL with no client socket: tagging sessions and stream jobs.

It is the socket's URL pull without the socket: UrlSource -> ``LiveSession`` (finals, and
interims when asked; tags when asked), whose transport is the job: each event goes to
``on_event`` as it is emitted. It counts against the same live capacity and URL-pull limit as
the socket's sessions (its session sits in the app's ``SessionRegistry``), and it ends in one
of these ways:

- ``ended``: the source ended, or the audio limit (``max_audio_s``) was reached
- ``silent``: no audio arrived for ``silence_timeout_s`` (wall clock; silence, music and
  pauses are audio, so a broadcast with long lulls goes on)
- ``failed``: the source could not be pulled (``source_failed``; the reason says why) or
  recognition failed
- ``stopped``: ``stop()`` was called (a user stop or an overwrite)
- ``drained``: the server is shutting down (the owner resumes it after the restart)
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from earmark.core import SAMPLE_RATE
from earmark.core.audio import PcmDecoder
from earmark.core.events import Event, SourceStatus, Transcript
from earmark.core.session_spec import SessionSpec, SpeakersSpec, TagsSpec
from earmark.errors import EarmarkError
from earmark.inference.tagger import Tag
from earmark.ingest.services import LiveServices
from earmark.ingest.url_source import SourceConfig, UrlSource
from earmark.live.channels import ChannelGroup
from earmark.live.factory import LivePolicy, new_runner
from earmark.live.runner import LiveRunner
from earmark.live.session import LiveSession, SessionParts
from earmark.outbound.url_safety import parse_networks

logger = logging.getLogger(__name__)
FINISH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PullOutcome:
    state: str  # ended | silent | failed | stopped | drained
    reason: str
    audio_samples: int
    source_failed: bool = False  # failed: the source, not the server


def source_config(services: LiveServices, headers: dict[str, str], **more: Any) -> SourceConfig:
    """How the server pulls: its egress proxy, its allowed networks, its reconnect budget."""
    settings, egress = services.settings, services.egress
    return SourceConfig(headers=headers, reconnect_budget_s=settings.url_reconnect_budget_s,
                        proxy_url=egress.url, egress=egress,
                        allow_networks=tuple(parse_networks(settings.url_allow_networks)),
                        **more)


async def probe_channels(services: LiveServices, url: str, headers: dict[str, str]) -> int:
    """The channel count of a source's audio (one short connection). Raises SourceError."""
    source = UrlSource(url, source_config(services, headers))
    return await asyncio.to_thread(source.probe_channels)


class _JobEncoder:
    """A job's "dialect": the events themselves (its words labelled with their channel when
    the source has several); no closing messages."""

    def __init__(self, channel: int | None) -> None:
        self.channel = channel or 0
        self._label = channel

    def encode(self, event: Event) -> Event:
        if self._label is not None and isinstance(event, Transcript):
            return replace(event, words=tuple(replace(w, channel=self._label)
                                              for w in event.words))
        return event

    def metadata(self, **_: Any) -> None:
        return None

    def summary(self, summary: str, short: str) -> None:
        return None

    def error(self, err: EarmarkError) -> None:
        return None


class _JobTransport:
    """Nothing to send over: the session delivers to ``on_event`` directly."""

    open = False

    async def opened(self) -> None:
        await asyncio.Event().wait()  # never: the outbox is not used

    async def send(self, message: bytes) -> None:
        raise AssertionError("a job session delivers directly")

    async def flushed(self) -> None:
        return

    async def close(self, code: int, reason: str) -> None:
        return


class PullSession:
    def __init__(self, services: LiveServices, *, url: str, headers: dict[str, str],
                 on_event: Callable[[Event], None], tags: tuple[Tag, ...] | None = None,
                 seed_sentence: str | None = None, hotwords: tuple[str, ...] = (),
                 max_audio_s: float | None = None, silence_timeout_s: float | None = None,
                 on_progress: Callable[[int, int], None] | None = None, skip_s: float = 0.0,
                 resume_at_s: float = 0.0,
                 vad_threshold: float | None = None, language: str | None = None,
                 diarize: bool = False, speakers: int | None = None,
                 on_audio: Callable[[bytes], None] | None = None, channels: int = 1,
                 whole_sentences: bool = False, early_finals: bool = False) -> None:
        """``channels`` > 1: the source is pulled with that many channels, each transcribed on
        its own; its words carry their ``channel``. ``whole_sentences``: the caller analyses
        the text (redaction): finals only at endpoints. ``early_finals``: interims are decoded
        (``on_event`` gets them too) so that words two of them agree on are final during
        continuous talk, not only at pauses; they pause under load like any interims."""
        self.services = services
        self.settings = services.settings
        self.url, self.headers = url, dict(headers)
        self.spec = SessionSpec(
            interim_results=early_finals and not whole_sentences,
            language=(language or "en").split("-")[0].lower(),  # a code, or "auto"
            hotwords=", ".join(hotwords) if hotwords else None,
            whole_sentences=whole_sentences,
            speakers=SpeakersSpec(speakers) if diarize else None,
            tags=TagsSpec(seed_sentence) if tags is not None else None)
        self.on_event = on_event
        self.on_progress = on_progress  # (settled sample, received sample) after each chunk
        self.on_audio = on_audio  # each chunk of 16 kHz mono s16le, as the session gets it
        self.max_audio_s = max_audio_s
        self.silence_timeout_s = silence_timeout_s
        self.channels = channels
        self._skip_bytes = int(skip_s * SAMPLE_RATE) * 2 * channels  # not wanted
        self.skip_s = skip_s
        self.resume_at_s = resume_at_s  # source time a resumed job had reached (finite ones)
        self.session = self._session(tags, vad_threshold)
        self.finished = asyncio.Event()
        self._stop_reason: str | None = None
        self._wake = asyncio.Event()
        self._last_audio_at = time.monotonic()
        self._outcome: PullOutcome | None = None

    def _session(self, tags: tuple[Tag, ...] | None, vad_threshold: float | None) -> LiveSession:
        policy = LivePolicy.from_settings(self.settings)
        if vad_threshold is not None:  # the job's own speech_threshold
            policy = replace(policy, vad_threshold=vad_threshold)
        channels = self.channels
        engine = self.services.engine

        def build(channel: int | None, emit: Callable[[Event], None]) -> LiveRunner:
            return new_runner(policy, engine, self.spec, PcmDecoder(
                encoding="linear16", sample_rate=SAMPLE_RATE, channels=channels,
                channel=channel), emit, tags)

        parts = SessionParts(
            encoders=[_JobEncoder(None)] if channels == 1
            else [_JobEncoder(i) for i in range(channels)],
            build_runner=build, metadata_channels=channels,
            outbox_max_messages=self.settings.outbox_max_messages,
            deliver=self.on_event, close_wait_s=FINISH_TIMEOUT_S)
        return LiveSession(_JobTransport(), parts, request_id=f"pull-{uuid.uuid4()}",
                           pulls_url=True)

    @property
    def runner(self) -> LiveRunner | ChannelGroup:
        return self.session.runner

    def drain(self) -> None:
        self.session.drain()
        self._wake.set()

    def stop(self, reason: str) -> None:
        self._stop_reason = self._stop_reason or reason
        self._wake.set()

    async def run(self) -> PullOutcome:
        self.services.sessions.add(self.session)
        try:
            await self.session.run(self._consume)
            return self._result()
        finally:
            self.services.sessions.discard(self.session)
            self.finished.set()

    def _result(self) -> PullOutcome:
        now = self.runner.now_sample
        outcome = self._outcome or PullOutcome("failed", "the session ended early", now)
        if self.session.error is not None:  # recognition failed, before or while finishing
            return outcome if outcome.state == "failed" else PullOutcome(
                "failed", self.session.error.message, now)
        if self.on_progress is not None:
            self.on_progress(now, now)
        return outcome

    async def _consume(self) -> None:
        """Pulls until an outcome; a recognition failure is raised after it is recorded, so
        the session ends without finishing."""
        source = UrlSource(self.url, source_config(
            self.services, self.headers,
            # The source counts the audio skipped here too: the limit is on what is kept.
            max_duration_s=(self.max_audio_s + self.skip_s) if self.max_audio_s
            else 4 * 3600.0, channels=self.channels,
            skip_if_finite_s=self.resume_at_s))
        chunks = source.chunks().__aiter__()
        try:
            while self._outcome is None:
                self._outcome = await self._next(chunks)
        except EarmarkError as err:
            self._outcome = PullOutcome("failed", err.message, self.runner.now_sample)
            if self.runner.failed.done():
                raise
        finally:
            source.close()

    async def _next(self, chunks: Any) -> PullOutcome | None:
        """One chunk (or status) from the source; an outcome when the session should end."""
        now = self.runner.now_sample
        if self.session.draining.done():
            return PullOutcome("drained", self._stop_reason or "the server is shutting down",
                               now)
        if self._stop_reason is not None:
            return PullOutcome("stopped", self._stop_reason, now)
        if self.runner.failed.done():
            self.runner.failed.result()  # raises the recognition error
        nxt = asyncio.ensure_future(chunks.__anext__())
        wake = asyncio.ensure_future(self._wake.wait())
        timeout = None if self.silence_timeout_s is None else max(
            0.0, self._last_audio_at + self.silence_timeout_s - time.monotonic())
        done, _ = await asyncio.wait({nxt, wake, self.runner.failed, self.session.draining},
                                     timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        wake.cancel()
        if not done:  # the session ends here, and the source with it
            nxt.cancel()
            return PullOutcome("silent", f"no audio for {self.silence_timeout_s:g} s", now)
        if nxt not in done:
            nxt.cancel()
            return None  # a stop, a drain or a failure: handled on the next call
        try:
            item = nxt.result()
        except StopAsyncIteration:
            return PullOutcome("ended", "the source ended", now)
        if isinstance(item, SourceStatus):
            return self._status(item, now)
        await self._feed(item)
        return None

    def _status(self, item: SourceStatus, now: int) -> PullOutcome | None:
        self.on_event(item)
        if item.state == "failed":
            return PullOutcome("failed", f"source failed: {item.reason}", now,
                               source_failed=True)
        if item.state == "ended":
            return PullOutcome("ended", item.reason, now)
        return None

    async def _feed(self, item: bytes) -> None:
        if self._skip_bytes:
            dropped = min(self._skip_bytes, len(item))
            self._skip_bytes -= dropped
            item = item[dropped:]
            if not item:
                return
        # A file is read faster than real time: let the finals keep up (bounded buffers).
        await self.runner.wait_for_finals(2)
        if self.on_audio is not None:
            self.on_audio(item)
        self._last_audio_at = time.monotonic()
        await self.session.feed(item)
        if self.on_progress is not None:
            self.on_progress(self.runner.settled_sample, self.runner.now_sample)
