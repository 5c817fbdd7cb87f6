"""The one owner of the model: worker threads that run every recognition request, in batches.

Sessions and handlers call ``submit()`` from any thread and get a ``concurrent.futures.Future``.

Policy:
- Lanes are served lowest ``Priority`` first: finals, then synchronous HTTP requests, then
  partials, then file jobs. A file job that has waited ``file_aging_s`` is served before
  partials, so jobs never starve.
- A batch takes the head of the chosen lane and every queued request with the same batch key
  (window size and beam: what the model can stack), from that lane and lower ones, up to
  ``max_batch``. With ``max_wait_ms`` it waits that long for a batch to fill (worth it on GPU).
- A newer partial from the same owner replaces its pending one (its future is cancelled).
  Any request whose future its owner cancelled is dropped without taking a batch slot.
- A batch that raises fails only its own requests; the thread keeps running.
- The queue is bounded: past ``max_pending`` requests ``submit`` raises ``Overloaded``.
- ``workers`` threads take batches from the same queues (on a CPU, two let a final start
  while a batch of interims is still running); nothing else calls the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field

from earmark.core import SAMPLE_RATE
from earmark.core.events import Priority, Recognition, RecognitionRequest
from earmark.errors import Overloaded

logger = logging.getLogger(__name__)

RecognizeBatch = Callable[[list[RecognitionRequest]], list[Recognition]]
BatchKey = Callable[[RecognitionRequest], Hashable]

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
LATENCY_BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


@dataclass
class _Item:
    owner: object
    request: RecognitionRequest
    future: Future[Recognition] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class LaneStats:
    completed: int = 0
    failed: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0  # model time spent on this lane's items (batch time shared out)
    # request latency (queued -> result) histogram: counts per LATENCY_BUCKETS_S bound, +Inf
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sum_s: float = 0.0


@dataclass
class SchedulerStats:
    batches: int = 0
    superseded: int = 0
    busy_s: float = 0.0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    lanes: dict[str, LaneStats] = field(
        default_factory=lambda: {p.name.lower(): LaneStats() for p in Priority}
    )


class InferenceScheduler:
    """Runs ``recognize_batch`` on its own thread for every submitted request."""

    def __init__(
        self,
        recognize_batch: RecognizeBatch,
        *,
        batch_key: BatchKey = lambda request: 0,
        max_batch: int = 8,
        max_wait_ms: float = 0.0,
        max_pending: int = 1024,
        file_aging_s: float = 10.0,
        workers: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recognize = recognize_batch
        self._key = batch_key
        self.max_batch = max_batch
        self._max_wait_s = max_wait_ms / 1000
        self._max_pending = max_pending
        self._file_aging_s = file_aging_s
        self._clock = clock
        self._lanes: dict[Priority, deque[_Item]] = {p: deque() for p in Priority}
        self._partials: dict[int, _Item] = {}  # id(owner) -> its pending partial
        self._cond = threading.Condition()
        self._stopping = False
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._stats_lock = threading.Lock()
        self.stats = SchedulerStats()

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        for n in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"earmark-inference-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

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
        for thread in self._threads:
            thread.join(timeout_s)

    def pending(self) -> dict[str, int]:
        with self._cond:
            return {p.name.lower(): len(lane) for p, lane in self._lanes.items()}

    def queue_age_s(self) -> dict[str, float]:
        """How long the oldest request of each lane has waited (0 for an empty lane)."""
        now = self._clock()
        with self._cond:
            heads = {p: next((it for it in lane if not it.future.cancelled()), None)
                     for p, lane in self._lanes.items()}
            return {p.name.lower(): (now - head.queued_at) if head else 0.0
                    for p, head in heads.items()}

    def submit(self, owner: object, request: RecognitionRequest) -> Future[Recognition]:
        item = _Item(owner, request, queued_at=self._clock())
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

    # ----------------------------------------------------------------- batching
    def _lane_order(self, now: float) -> list[Priority]:
        order = list(Priority)
        files = self._lanes[Priority.FILE]
        if files and now - files[0].queued_at >= self._file_aging_s:
            order.remove(Priority.FILE)
            order.insert(order.index(Priority.PARTIAL), Priority.FILE)
        return order

    def _take_batch(self) -> list[_Item]:
        """Pops the next batch (caller holds the lock); empty if nothing is queued."""
        order = self._lane_order(self._clock())
        batch: list[_Item] = []
        # Each pass removes at least the head, so this ends; it repeats only when every
        # request taken had been cancelled.
        while not batch:
            head_lane = next((p for p in order if self._lanes[p]), None)
            if head_lane is None:
                return []
            key = self._key(self._lanes[head_lane][0].request)
            self._take_matching(batch, key, order[order.index(head_lane) :])
        return batch

    def _take_matching(self, batch: list[_Item], key: Hashable, lanes: list[Priority]) -> None:
        """Moves queued requests with ``key`` from ``lanes``, in order, into ``batch``."""
        for priority in lanes:
            lane = self._lanes[priority]
            for item in [it for it in lane if self._key(it.request) == key]:
                if len(batch) == self.max_batch:
                    return
                lane.remove(item)
                if priority is Priority.PARTIAL:
                    self._partials.pop(id(item.owner), None)
                if item.future.cancelled():  # its owner no longer wants it: no batch slot
                    continue
                batch.append(item)

    def _next_batch(self) -> list[_Item] | None:
        with self._cond:
            while not self._stopping:
                batch = self._take_batch()
                if not batch:
                    self._cond.wait()
                    continue
                deadline = self._clock() + self._max_wait_s
                while len(batch) < self.max_batch and self._max_wait_s > 0:
                    remaining = deadline - self._clock()
                    if remaining <= 0 or not self._cond.wait(remaining):
                        break
                    self._top_up(batch)
                return batch
            return None

    def _top_up(self, batch: list[_Item]) -> None:
        floor = min(item.request.priority for item in batch)
        self._take_matching(batch, self._key(batch[0].request), [p for p in Priority if p >= floor])

    # ------------------------------------------------------------------ running
    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            batch = [item for item in batch if item.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            started = self._clock()
            try:
                results = self._recognize([item.request for item in batch])
                if len(results) != len(batch):
                    raise RuntimeError("the recogniser returned the wrong number of results")
            except Exception as exc:  # a failing batch fails only its own requests
                logger.exception("recognition failed for a batch of %d", len(batch))
                self._account(batch, self._clock() - started, failed=True)
                for item in batch:
                    item.future.set_exception(exc)
                continue
            self._account(batch, self._clock() - started, failed=False)
            for item, result in zip(batch, results, strict=True):
                item.future.set_result(result)

    def _account(self, batch: list[_Item], elapsed_s: float, *, failed: bool) -> None:
        with self._stats_lock:
            self._account_locked(batch, elapsed_s, failed=failed)

    def _account_locked(self, batch: list[_Item], elapsed_s: float, *, failed: bool) -> None:
        stats = self.stats
        stats.batches += 1
        stats.busy_s += elapsed_s
        stats.batch_sizes[len(batch)] = stats.batch_sizes.get(len(batch), 0) + 1
        total_audio = sum(len(item.request.audio) for item in batch) or 1
        now = self._clock()
        for item in batch:
            lane = stats.lanes[item.request.priority.name.lower()]
            latency = now - item.queued_at
            lane.latency_sum_s += latency
            slot = next((i for i, b in enumerate(LATENCY_BUCKETS_S) if latency <= b),
                        len(LATENCY_BUCKETS_S))
            lane.latency_counts[slot] += 1
            share = len(item.request.audio) / total_audio
            lane.busy_s += elapsed_s * share
            if failed:
                lane.failed += 1
            else:
                lane.completed += 1
                lane.audio_s += len(item.request.audio) / SAMPLE_RATE
