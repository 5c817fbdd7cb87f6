"""Glue for one live stream: PCM -> windows -> VAD -> session policy -> scheduler -> events.

Everything here runs on the event loop thread; the session core is only touched from it.
Recognition futures complete on the model thread and are handed back with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future

import numpy as np

from earmark.core.audio import PcmDecoder, WindowFramer
from earmark.core.events import Event, Recognition, RecognitionRequest, StreamClosed
from earmark.core.session import SessionConfig, StreamSession
from earmark.errors import EarmarkError
from earmark.inference.load_gauge import LoadPolicy
from earmark.inference.scheduler import InferenceScheduler
from earmark.inference.vad import VadWorker
from earmark.live.ordered import OrderedStage
from earmark.live.speakers import SpeakerStage
from earmark.live.tagging import TagFeed

logger = logging.getLogger(__name__)
MAX_PENDING_FINALS = 2  # queued finals before a too-fast client is read no further


class LiveRunner:
    """Drives one StreamSession. ``emit`` receives every event in order.

    ``failed`` completes with an exception when the stream cannot go on (a final could not be
    decoded); ``closed`` completes when every final after ``close()`` has been emitted.
    """

    def __init__(
        self,
        *,
        config: SessionConfig,
        decoder: PcmDecoder,
        vad: VadWorker,
        scheduler: InferenceScheduler,
        emit: Callable[[Event], None],
        load_policy: Callable[[], LoadPolicy] | None = None,
        tag_feed: TagFeed | None = None,
        stages: Sequence[OrderedStage] = (),
    ) -> None:
        self.session = StreamSession(config)
        self.decoder = decoder
        self.framer = WindowFramer()
        self.vad = vad
        self.vad_state = vad.vad.new_state()
        self.scheduler = scheduler
        self.emit = emit
        self._load_policy = load_policy
        self.tag_feed = tag_feed
        # What events pass through before ``emit``, in order (live/factory builds them); the
        # ones that read the audio (speakers) get every window too.
        self.stages = tuple(stages)
        self._listeners = [s for s in self.stages if isinstance(s, SpeakerStage)]
        self._base_interval = config.partial_interval_samples
        self.partials_shed = False
        self.sha256 = hashlib.sha256()
        self._loop = asyncio.get_running_loop()
        self._futures: dict[int, Future[Recognition]] = {}
        self.failed: asyncio.Future[None] = self._loop.create_future()
        self._progress = asyncio.Event()  # set whenever results may have freed a final
        self.failed.add_done_callback(lambda _f: self._progress.set())
        self.closed: asyncio.Future[int] = self._loop.create_future()

    async def feed(self, data: bytes) -> tuple[int, float]:
        """One binary frame from the client. Raises BadAudio for malformed frames. Returns
        the frame's length in 16 kHz samples and its peak (for ``WallClockFollow``).

        A client sending faster than real time waits here while finals are queued: the
        adapter stops reading, TCP pushes back, and buffered audio stays bounded (a few
        utterances) instead of growing with whatever the client sends."""
        await self.wait_for_finals(MAX_PENDING_FINALS)
        samples = self.decoder.decode(data)
        self.sha256.update(data)
        await self._push(self.framer.push(samples))
        return len(samples), float(np.abs(samples).max()) if len(samples) else 0.0

    async def wait_for_finals(self, most: int) -> None:
        """Returns once at most ``most`` finals are queued or decoding, or the stream failed:
        backpressure for a source faster than real time (woken by results, not a poll)."""
        while self.session.pending_finals > most and not self.failed.done():
            self._progress.clear()
            await self._progress.wait()

    async def feed_silence(self, samples: int) -> None:
        """Silence the client did not send while the wall clock ran on (``live/wall_clock``):
        endpoints, finals and UtteranceEnd still come while a client pauses its audio."""
        await self._push(self.framer.push(np.zeros(samples, dtype=np.float32)))

    def finalize(self) -> None:
        self.session.receive_finalize()
        self._pump()

    async def close(self) -> None:
        """End of audio: flush the resampler and framer, then every pending final."""
        tail = self.framer.push(self.decoder.flush())
        await self._push(tail)
        await self._push(self.framer.flush())
        self.session.receive_close()
        self._pump()

    async def finish(self, sender: asyncio.Future[None], timeout_s: float) -> int:
        """End of the stream: every final, then the last Tags. Raises when the stream or
        ``sender`` (the adapter's writer) failed meanwhile. Returns the duration in samples."""
        await self.close()
        done, _ = await asyncio.wait({self.closed, self.failed, sender}, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        for future in (sender, self.failed):
            if future in done:
                future.result()
        if self.tag_feed is not None:
            await self.tag_feed.flush()
        for stage in self.stages:
            await stage.flush()
        return self.closed.result() if self.closed.done() else 0

    def abandon(self) -> None:
        """The client is gone: cancel what is still queued for the model."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        if self.tag_feed is not None:
            self.tag_feed.close()
        for stage in self.stages:
            stage.close()

    @property
    def lag_samples(self) -> int:
        return self.session.lag_samples

    @property
    def pending_finals(self) -> int:
        return self.session.pending_finals

    @property
    def now_sample(self) -> int:
        return self.session.now_sample

    @property
    def quiet(self) -> bool:
        """No speech under way and no final owed: silence so far is really silence."""
        segmenter = self.session.segmenter
        return (not self.session.pending_finals and segmenter.silence_start is None
                and not segmenter.in_speech)

    @property
    def settled_sample(self) -> int:
        """Everything before this has been emitted: the session's committed point, or the
        first transcript a stage still holds."""
        settled = self.session.committed_sample
        for stage in self.stages:
            held = stage.held_from
            if held is not None:
                settled = min(settled, held)
        return settled

    def _apply_load(self) -> None:
        if self._load_policy is None:
            return
        policy = self._load_policy()
        self.partials_shed = policy.shed_partials
        self.session.set_early_finals(policy.speculate)
        self.session.set_partial_interval(
            None if policy.shed_partials else int(self._base_interval * policy.partial_stretch)
        )

    async def _push(self, windows) -> None:  # noqa: ANN001
        if not len(windows):
            return
        self._apply_load()
        for listener in self._listeners:
            listener.receive_audio(windows)
        probs = await asyncio.wrap_future(self.vad.submit(self.vad_state, windows))
        self.session.receive_audio(windows, probs)
        self._pump()

    def _pump(self) -> None:
        self._progress.set()
        for request in self.session.requests_to_send():
            self._submit(request)
        for request_id in self.session.requests_to_cancel():
            future = self._futures.pop(request_id, None)
            if future is not None:
                future.cancel()  # still queued: the scheduler drops it; running: ignored
        for event in self.session.events_to_send():
            self.emit(event)
            if self.tag_feed is not None:
                self.tag_feed.on_event(event)
            if isinstance(event, StreamClosed) and not self.closed.done():
                self.closed.set_result(event.duration_samples)

    def _submit(self, request: RecognitionRequest) -> None:
        try:
            future = self.scheduler.submit(self, request)
        except EarmarkError as exc:
            self._fail(exc)
            return
        self._futures[request.request_id] = future
        future.add_done_callback(
            lambda f, rid=request.request_id: self._loop.call_soon_threadsafe(self._done, rid, f)
        )

    def _done(self, request_id: int, future: Future[Recognition]) -> None:
        if self._futures.pop(request_id, None) is None or self.failed.done():
            return
        try:
            result = future.result()
        except (CancelledError, Exception):  # superseded, or failed (the scheduler logged it)
            self._on_failure(request_id)
            return
        try:
            self.session.receive_result(request_id, result)
            self._pump()
        except Exception as exc:  # noqa: BLE001 - handed to the connection's task group
            self._fail(exc)

    def _on_failure(self, request_id: int) -> None:
        try:
            self.session.receive_failure(request_id)
            self._pump()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if not self.failed.done():
            self.failed.set_exception(exc)
