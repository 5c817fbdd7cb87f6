"""Applies a session's text options (redaction, profanity, replace, sentiment, entities) to
its transcripts, in order, before they are sent.

Every transcript (interims too: a redacted final must not have leaked in its interims) goes
to the understanding worker; events leave in the order they came, each waiting for the ones
before it. Events that are not transcripts pass through in their place.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

from earmark.core.events import Event, Transcript
from earmark.core.text_options import TextOptions
from earmark.inference.understanding import UnderstandingWorker, Understood

logger = logging.getLogger(__name__)


class TextStage:
    def __init__(self, worker: UnderstandingWorker, options: TextOptions,
                 emit: Callable[[Event], None]) -> None:
        self.worker = worker
        self.options = options
        self.emit = emit
        self._loop = asyncio.get_running_loop()
        self._queue: deque[tuple[Event, Future[Understood] | None]] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self.superseded = 0

    def on_event(self, event: Event) -> None:
        future: Future[Understood] | None = None
        if isinstance(event, Transcript) and not event.is_final and self._queue:
            # A newer interim supersedes a held one that has not started: the worker's queue
            # stays at about one interim per session however busy it is.
            held, held_future = self._queue[-1]
            if (isinstance(held, Transcript) and not held.is_final and held_future is not None
                    and held_future.cancel()):
                self._queue.pop()
                self.superseded += 1
        if isinstance(event, Transcript) and event.words:
            future = self.worker.submit(event.words, self.options)
            future.add_done_callback(lambda _f: self._loop.call_soon_threadsafe(self._drain))
        self._queue.append((event, future))
        self._idle.clear()
        self._drain()

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Waits (bounded) until every held event has been sent."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except asyncio.TimeoutError:
            logger.warning("text options: %d events still held at the end", len(self._queue))

    def close(self) -> None:
        for _, future in self._queue:
            if future is not None:
                future.cancel()
        self._queue.clear()
        self._idle.set()

    def _drain(self) -> None:
        while self._queue:
            event, future = self._queue[0]
            if future is not None and not future.done():
                return
            self._queue.popleft()
            self.emit(self._apply(event, future))
        self._idle.set()

    def _apply(self, event: Event, future: Future[Understood] | None) -> Event:
        if future is None or not isinstance(event, Transcript):
            return event
        try:
            done = future.result()
        except Exception:  # the options are extra, but never send unredacted text
            logger.exception("text options failed; the transcript is withheld")
            return replace(event, words=())
        sentiment = (done.sentiment.label, done.sentiment.score) if done.sentiment else None
        return replace(event, words=done.words, sentiment=sentiment,
                       entities=tuple((e.label, e.text, e.start_sample, e.end_sample)
                                      for e in done.entities))
