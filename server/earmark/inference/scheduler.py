"""The one owner of the model: a thread that runs every recognition request, by priority.

Sessions and handlers call ``submit()`` from any thread and get a ``concurrent.futures.Future``.
Lanes are served lowest ``Priority`` first (finals before sync requests before partials before
file jobs); a newer partial from the same owner replaces its pending one, whose future is
cancelled. A request that raises fails only its own future; the thread keeps running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from earmark.core.events import Priority, Recognition, RecognitionRequest
from earmark.errors import Overloaded

logger = logging.getLogger(__name__)

Recognize = Callable[[RecognitionRequest], Recognition]


@dataclass
class _Item:
    owner: object
    request: RecognitionRequest
    future: Future[Recognition] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class SchedulerStats:
    completed: int = 0
    failed: int = 0
    superseded: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0


class InferenceScheduler:
    """Runs ``recognize`` on its own thread for every submitted request."""

    def __init__(self, recognize: Recognize, *, max_pending: int = 1024) -> None:
        self._recognize = recognize
        self._max_pending = max_pending
        self._lanes: dict[Priority, deque[_Item]] = {p: deque() for p in Priority}
        self._partials: dict[int, _Item] = {}  # id(owner) -> its pending partial
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = SchedulerStats()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="earmark-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            pending = [item for lane in self._lanes.values() for item in lane]
            for lane in self._lanes.values():
                lane.clear()
            self._partials.clear()
            self._cond.notify_all()
        for item in pending:
            item.future.cancel()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def pending(self) -> dict[str, int]:
        with self._cond:
            return {p.name.lower(): len(lane) for p, lane in self._lanes.items()}

    def submit(self, owner: object, request: RecognitionRequest) -> Future[Recognition]:
        item = _Item(owner, request)
        superseded: _Item | None = None
        with self._cond:
            if self._stopping:
                raise Overloaded("the server is shutting down")
            if sum(len(lane) for lane in self._lanes.values()) >= self._max_pending:
                raise Overloaded("the recognition queue is full")
            lane = self._lanes[request.priority]
            if request.priority is Priority.PARTIAL:
                superseded = self._partials.pop(id(owner), None)
                if superseded is not None:
                    lane.remove(superseded)
                self._partials[id(owner)] = item
            lane.append(item)
            self._cond.notify()
        if superseded is not None:
            self.stats.superseded += 1
            superseded.future.cancel()
        return item.future

    def _next(self) -> _Item | None:
        with self._cond:
            while not self._stopping:
                for priority in Priority:
                    lane = self._lanes[priority]
                    if lane:
                        item = lane.popleft()
                        if priority is Priority.PARTIAL:
                            self._partials.pop(id(item.owner), None)
                        return item
                self._cond.wait()
            return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            if not item.future.set_running_or_notify_cancel():
                continue
            started = time.perf_counter()
            try:
                result = self._recognize(item.request)
            except Exception as exc:  # one bad request must not stop the thread
                logger.exception("recognition failed for request %d", item.request.request_id)
                self.stats.failed += 1
                item.future.set_exception(exc)
                continue
            finally:
                self.stats.busy_s += time.perf_counter() - started
            self.stats.completed += 1
            self.stats.audio_s += len(item.request.audio) / 16000
            item.future.set_result(result)
