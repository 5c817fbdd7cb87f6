"""A stage between the live session and the wire whose work runs on a worker thread while
the events keep their order.

Every event goes through; a transcript the stage works on is held until its work is done,
and events behind it wait. A newer interim supersedes a held one whose work has not started,
so a busy worker holds at most about one interim per session.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from earmark.core.events import Event, Transcript

logger = logging.getLogger(__name__)


class OrderedStage(ABC):
    def __init__(self, emit: Callable[[Event], None]) -> None:
        self.emit = emit
        self._loop = asyncio.get_running_loop()
        self._queue: deque[tuple[Event, Future[Any] | None]] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self.superseded = 0

    @abstractmethod
    def submit(self, event: Transcript) -> Future[Any] | None:
        """Starts this stage's work on a transcript; None lets it pass as it is."""

    @abstractmethod
    def apply(self, event: Transcript, result: Any) -> Event:
        """The transcript with the work's result."""

    @abstractmethod
    def failed(self, event: Transcript) -> Event:
        """What goes out when the work failed."""

    @property
    def held_from(self) -> int | None:
        """Start sample of the first transcript still held (for settled-point readers)."""
        for event, _ in self._queue:
            if isinstance(event, Transcript):
                return event.start_sample
        return None

    def on_event(self, event: Event) -> None:
        future: Future[Any] | None = None
        if isinstance(event, Transcript) and not event.is_final and self._queue:
            held, held_future = self._queue[-1]
            if (isinstance(held, Transcript) and not held.is_final and held_future is not None
                    and held_future.cancel()):
                self._queue.pop()
                self.superseded += 1
        if isinstance(event, Transcript):
            future = self.submit(event)
            if future is not None:
                future.add_done_callback(
                    lambda _f: self._loop.call_soon_threadsafe(self._drain))
        self._queue.append((event, future))
        self._idle.clear()
        self._drain()

    async def flush(self, timeout_s: float = 60.0) -> None:
        """Waits (bounded) until every held event has been sent. Past the bound the held
        events go out as ``failed`` makes them: late, degraded, but never lost."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            logger.warning("%s: %d events still held after %.0f s; sending them without "
                           "this stage's result", type(self).__name__, len(self._queue),
                           timeout_s)
            while self._queue:
                event, future = self._queue.popleft()
                if future is not None:
                    future.cancel()
                self.emit(self.failed(event) if isinstance(event, Transcript) else event)
            self._idle.set()

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
            self.emit(self._finish(event, future))
        self._idle.set()

    def _finish(self, event: Event, future: Future[Any] | None) -> Event:
        if future is None or not isinstance(event, Transcript):
            return event
        try:
            result = future.result()
        except Exception:
            logger.exception("%s failed", type(self).__name__)
            return self.failed(event)
        return self.apply(event, result)
