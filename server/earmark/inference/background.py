"""A worker thread for model work that must never take CPU from transcription.

Rolling tags re-score a minute of text every few seconds per session. On a CPU-only machine
that thread competed with Whisper's threads on equal terms: at 12 streams on 2 cores it took
0.4 of a core while the finals fell behind. Here it runs at a higher nice value, so the kernel
gives it the cores only when transcription leaves them idle, and under load its results just
come later (each session keeps at most one scoring in flight, so nothing piles up).

Two queues: ``urgent`` work (labels a transcript waits for, such as live topics) always runs
before ``routine`` work (rolling tags), so a transcript never waits behind a backlog of tags.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def lower_thread_priority(nice: int) -> bool:
    """Raises the calling thread's nice value by ``nice`` (Linux: per thread). False where the
    platform cannot (the work then runs at normal priority)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
        return os.getpriority(os.PRIO_PROCESS, tid) > current
    except OSError:  # not Linux (the id is not a thread there), or not allowed
        return False


class BackgroundWorker:
    """One thread, two FIFO queues (urgent first), at ``nice`` below normal priority."""

    def __init__(self, name: str, nice: int = 10) -> None:
        self.nice = nice
        self.lowered = False
        self._queues: dict[bool, deque[tuple[Future[Any], Callable[[], Any]]]] = {
            True: deque(), False: deque()}
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._thread.start()
        self._started.wait(5)

    def submit(self, fn: Callable[..., T], *args: Any, urgent: bool = False) -> Future[T]:
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker is closed")
            self._queues[urgent].append((future, lambda: fn(*args)))
            self._cond.notify()
        return future

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())

    def close(self) -> None:
        with self._cond:
            self._closed = True
            dropped = [f for q in self._queues.values() for f, _ in q]
            for q in self._queues.values():
                q.clear()
            self._cond.notify_all()
        for future in dropped:
            future.cancel()

    def _next(self) -> tuple[Future[Any], Callable[[], Any]] | None:
        with self._cond:
            while not self._closed:
                for urgent in (True, False):
                    if self._queues[urgent]:
                        return self._queues[urgent].popleft()
                self._cond.wait()
            return None

    def _run(self) -> None:
        self.lowered = lower_thread_priority(self.nice)
        self._started.set()
        while (job := self._next()) is not None:
            future, work = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                future.set_exception(exc)
            else:
                future.set_result(result)
