"""The background worker: urgent work before routine, errors reach the caller, close cancels
what is queued, and on Linux the thread really runs at a lower priority."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from earmark.inference.background import BackgroundWorker


def test_urgent_work_overtakes_queued_routine_work() -> None:
    worker = BackgroundWorker("test-bg", nice=0)
    gate, started = threading.Event(), threading.Event()
    order: list[str] = []
    try:
        # Holds the thread while the queue fills.
        blocker = worker.submit(lambda: (started.set(), gate.wait(5)))
        assert started.wait(5)
        routine = [worker.submit(order.append, f"routine-{i}") for i in range(3)]
        urgent = worker.submit(order.append, "urgent", urgent=True)
        assert worker.pending() == 4
        gate.set()
        for f in [blocker, *routine, urgent]:
            f.result(5)
        assert order == ["urgent", "routine-0", "routine-1", "routine-2"]
    finally:
        worker.close()


def test_a_failing_call_fails_only_its_future() -> None:
    worker = BackgroundWorker("test-bg", nice=0)
    try:
        bad = worker.submit(lambda: 1 / 0)
        good = worker.submit(lambda: 42)
        with pytest.raises(ZeroDivisionError):
            bad.result(5)
        assert good.result(5) == 42
    finally:
        worker.close()


def test_close_cancels_queued_work_and_refuses_more() -> None:
    worker = BackgroundWorker("test-bg", nice=0)
    gate, started = threading.Event(), threading.Event()
    running = worker.submit(lambda: (started.set(), gate.wait(5))[1])
    assert started.wait(5)
    queued = worker.submit(lambda: "never")
    worker.close()
    gate.set()
    assert running.result(5) is True
    assert queued.cancelled()
    with pytest.raises(RuntimeError):
        worker.submit(lambda: None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_thread_runs_at_a_higher_nice_value_than_the_process() -> None:
    worker = BackgroundWorker("test-bg", nice=5)
    try:
        tid = worker.submit(threading.get_native_id).result(5)
        assert worker.lowered
        assert os.getpriority(os.PRIO_PROCESS, tid) == min(19, os.getpriority(
            os.PRIO_PROCESS, threading.get_native_id()) + 5)
    finally:
        worker.close()
