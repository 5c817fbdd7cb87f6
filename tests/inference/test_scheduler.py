"""The scheduler with a gated fake recogniser: each call blocks until the test releases it,
so the order of calls is asserted exactly, with no sleeps."""

import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest

from earmark.core.events import Priority, Recognition, RecognitionRequest
from earmark.errors import Overloaded
from earmark.inference.scheduler import InferenceScheduler


class Gate:
    def __init__(self) -> None:
        self.calls: list[int] = []
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.fail_ids: set[int] = set()

    def __call__(self, request: RecognitionRequest) -> Recognition:
        self.calls.append(request.request_id)
        self.entered.release()
        assert self.release.acquire(timeout=10)
        if request.request_id in self.fail_ids:
            raise RuntimeError("model exploded")
        return Recognition(())


def req(rid: int, priority: Priority) -> RecognitionRequest:
    return RecognitionRequest(rid, priority, 0, np.zeros(160, dtype=np.float32))


@pytest.fixture
def gated():
    gate = Gate()
    sched = InferenceScheduler(gate)
    sched.start()
    yield gate, sched
    for _ in range(50):
        gate.release.release()
    sched.stop()


def test_finals_overtake_queued_partials(gated):
    gate, sched = gated
    a, b = object(), object()
    first = sched.submit(a, req(1, Priority.PARTIAL))
    assert gate.entered.acquire(timeout=10)  # the model is busy with request 1
    futures = [sched.submit(a, req(2, Priority.FILE)), sched.submit(b, req(3, Priority.PARTIAL)),
               sched.submit(b, req(4, Priority.SYNC)), sched.submit(a, req(5, Priority.FINAL))]
    for _ in range(5):
        gate.release.release()
    for f in [first, *futures]:
        f.result(timeout=10)
    assert gate.calls == [1, 5, 4, 3, 2]


def test_newer_partial_replaces_pending_one(gated):
    gate, sched = gated
    owner = object()
    sched.submit(object(), req(1, Priority.FINAL))
    assert gate.entered.acquire(timeout=10)
    old = sched.submit(owner, req(2, Priority.PARTIAL))
    new = sched.submit(owner, req(3, Priority.PARTIAL))
    assert old.cancelled()
    gate.release.release()
    gate.release.release()
    new.result(timeout=10)
    with pytest.raises(CancelledError):
        old.result()
    assert gate.calls == [1, 3]
    assert sched.stats.superseded == 1


def test_failing_request_fails_alone_and_the_thread_keeps_running(gated):
    gate, sched = gated
    gate.fail_ids.add(1)
    bad = sched.submit(object(), req(1, Priority.FINAL))
    good = sched.submit(object(), req(2, Priority.FINAL))
    gate.release.release()
    gate.release.release()
    with pytest.raises(RuntimeError, match="exploded"):
        bad.result(timeout=10)
    assert good.result(timeout=10) == Recognition(())
    assert sched.stats.failed == 1 and sched.stats.completed == 1


def test_full_queue_refuses():
    sched = InferenceScheduler(lambda r: Recognition(()), max_pending=2)  # not started
    sched.submit(object(), req(1, Priority.FINAL))
    sched.submit(object(), req(2, Priority.FINAL))
    with pytest.raises(Overloaded):
        sched.submit(object(), req(3, Priority.FINAL))
    sched.stop()
