"""Glue between a live session and the tag worker (runs on the event loop thread).

Finals go into the session's TagAggregator; scoring requests go to the tag worker's thread
and come back with ``call_soon_threadsafe``; Tags events go out through the session's
``emit``. Tagging never holds up transcripts: nothing here awaits, and a slow or failed
scoring only delays the next Tags message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, Future

from earmark.core.events import Event, Transcript
from earmark.core.tagging import SAMPLE_RATE, ScoredWindow, TagAggregator, TaggingConfig
from earmark.inference.tagger import Tag, TagWorker

logger = logging.getLogger(__name__)


class TagFeed:
    def __init__(self, worker: TagWorker, tags: tuple[Tag, ...], seed_sentence: str | None,
                 emit: Callable[[Event], None], config: TaggingConfig) -> None:
        self.worker = worker
        self.tags = tags
        self.emit = emit
        self.config = config
        self.aggregator = TagAggregator(config, seed_sentence)
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, Future[ScoredWindow]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._last_end = 0

    def on_event(self, event: Event) -> None:
        """Sees every session event before it is sent."""
        if isinstance(event, Transcript) and event.is_final:
            self._last_end = event.end_sample
            try:
                self.aggregator.receive_final(event.text, event.start_sample, event.end_sample)
                self._pump()
            except Exception:  # tags are extra: a fault here must never end the session
                logger.exception("tagging failed")

    async def flush(self, timeout_s: float = 5.0) -> None:
        """End of stream: score what is held back and wait (bounded) for the last Tags, so
        that a short session still gets them before Metadata."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.aggregator.receive_time(self._last_end + 3600 * SAMPLE_RATE)
        self._pump()
        deadline = self._loop.time() + timeout_s
        while self._pending and self._loop.time() < deadline:
            waits = [asyncio.wrap_future(f) for f in self._pending.values()]
            await asyncio.wait(waits, timeout=deadline - self._loop.time())
            await asyncio.sleep(0)  # let _done run (it is scheduled on the loop)

    def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()

    def _pump(self) -> None:
        for request in self.aggregator.requests_to_send():
            future = self.worker.submit(self.tags, request.text, request.seed_sentence)
            self._pending[request.request_id] = future
            future.add_done_callback(lambda f, rid=request.request_id:
                                     self._loop.call_soon_threadsafe(self._done, rid, f))
        for event in self.aggregator.events_to_send():
            self.emit(event)
        # A window held back by the interval is scored once the interval has passed, even
        # when the speaker has stopped.
        if self._timer is None and not self._pending and self.aggregator.waiting:
            self._timer = self._loop.call_later(self.config.min_interval_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._last_end += int(self.config.min_interval_s * SAMPLE_RATE)
        self.aggregator.receive_time(self._last_end)
        self._pump()

    def _done(self, request_id: int, future: Future[ScoredWindow]) -> None:
        if self._pending.pop(request_id, None) is None:
            return
        try:
            scored = future.result()
        except CancelledError:
            self.aggregator.receive_failure(request_id)
        except Exception:
            logger.exception("tag scoring failed; transcripts go on, tags are retried")
            self.aggregator.receive_failure(request_id)
        else:
            self.aggregator.receive_scores(request_id, scored)
        try:
            self._pump()
        except Exception:  # tags are extra: a fault here must never end the session
            logger.exception("sending tags failed")
