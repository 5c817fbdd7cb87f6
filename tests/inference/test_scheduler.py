"""The scheduler with a gated fake recogniser: each batch blocks until the test releases it,
so batch contents and order are asserted exactly, with no sleeps."""

import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest

from earmark.core.events import Priority, Recognition, RecognitionRequest
from earmark.errors import Overloaded
from earmark.inference.scheduler import InferenceScheduler


class Gate:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.fail_ids: set[int] = set()

    def __call__(self, requests: list[RecognitionRequest]) -> list[Recognition]:
        self.batches.append([r.request_id for r in requests])
        self.entered.release()
        assert self.release.acquire(timeout=10)
        if self.fail_ids & {r.request_id for r in requests}:
            raise RuntimeError("model exploded")
        return [Recognition(()) for _ in requests]


def req(rid: int, priority: Priority, seconds: float = 1.0) -> RecognitionRequest:
    return RecognitionRequest(rid, priority, 0, np.zeros(int(16000 * seconds), np.float32))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(**kw):
    gate = Gate()
    kw.setdefault("batch_key", lambda r: len(r.audio) // 16000)  # "window size" in seconds
    sched = InferenceScheduler(gate, **kw)
    sched.start()
    return gate, sched


@pytest.fixture
def cleanup():
    made = []
    yield made
    for gate, sched in made:
        for _ in range(100):
            gate.release.release()
        sched.stop()


def busy(gate, sched, rid=100):
    """Occupies the model thread so later submissions queue up."""
    fut = sched.submit(object(), req(rid, Priority.FINAL, seconds=9))
    assert gate.entered.acquire(timeout=10)
    return fut


def drain(gate, n):
    for _ in range(n):
        gate.release.release()


def test_finals_overtake_sync_partials_and_file_jobs(cleanup):
    gate, sched = make(max_batch=1)
    cleanup.append((gate, sched))
    a, b = object(), object()
    busy(gate, sched)
    futures = [sched.submit(a, req(2, Priority.FILE)), sched.submit(b, req(3, Priority.PARTIAL)),
               sched.submit(b, req(4, Priority.SYNC)), sched.submit(a, req(5, Priority.FINAL))]
    drain(gate, 5)
    for f in futures:
        f.result(timeout=10)
    assert gate.batches == [[100], [5], [4], [3], [2]]


def test_batches_take_same_window_requests_from_the_lane_and_below(cleanup):
    gate, sched = make(max_batch=3)
    cleanup.append((gate, sched))
    busy(gate, sched)
    owners = [object() for _ in range(6)]
    futures = [
        sched.submit(owners[0], req(1, Priority.PARTIAL, 2)),
        sched.submit(owners[1], req(2, Priority.FINAL, 2)),
        sched.submit(owners[2], req(3, Priority.FINAL, 5)),
        sched.submit(owners[3], req(4, Priority.PARTIAL, 2)),
        sched.submit(owners[4], req(5, Priority.PARTIAL, 2)),
        sched.submit(owners[5], req(6, Priority.FINAL, 5)),
    ]
    drain(gate, 10)
    for f in futures:
        f.result(timeout=10)
    # Head final (2 s) takes two 2 s partials along (max 3); then the 5 s finals; then the rest.
    assert gate.batches == [[100], [2, 1, 4], [3, 6], [5]]
    assert sched.stats.batch_sizes == {1: 2, 3: 1, 2: 1}


def test_newer_partial_replaces_pending_one(cleanup):
    gate, sched = make()
    cleanup.append((gate, sched))
    owner = object()
    busy(gate, sched)
    old = sched.submit(owner, req(2, Priority.PARTIAL))
    new = sched.submit(owner, req(3, Priority.PARTIAL))
    assert old.cancelled()
    drain(gate, 2)
    new.result(timeout=10)
    with pytest.raises(CancelledError):
        old.result()
    assert gate.batches == [[100], [3]]
    assert sched.stats.superseded == 1


def test_file_jobs_age_past_partials_but_not_finals(cleanup):
    clock = FakeClock()
    gate, sched = make(max_batch=1, file_aging_s=10.0, clock=clock)
    cleanup.append((gate, sched))
    busy(gate, sched)
    job = sched.submit(object(), req(1, Priority.FILE))
    clock.now = 11.0  # the job has waited past its aging limit
    partial = sched.submit(object(), req(2, Priority.PARTIAL))
    final = sched.submit(object(), req(3, Priority.FINAL))
    drain(gate, 4)
    for f in (job, partial, final):
        f.result(timeout=10)
    assert gate.batches == [[100], [3], [1], [2]]


def test_failing_batch_fails_alone_and_the_thread_keeps_running(cleanup):
    gate, sched = make(max_batch=2)
    cleanup.append((gate, sched))
    gate.fail_ids.add(1)
    busy(gate, sched)
    bad = [sched.submit(object(), req(1, Priority.FINAL)),
           sched.submit(object(), req(2, Priority.FINAL))]
    good = sched.submit(object(), req(3, Priority.FINAL, 4))
    drain(gate, 3)
    for f in bad:
        with pytest.raises(RuntimeError, match="exploded"):
            f.result(timeout=10)
    assert good.result(timeout=10) == Recognition(())
    assert sched.stats.lanes["final"].failed == 2
    assert sched.stats.lanes["final"].completed == 2  # the busy one and the good one


def test_waiting_fills_a_batch_that_arrives_in_pieces(cleanup):
    gate, sched = make(max_batch=2, max_wait_ms=5000)
    cleanup.append((gate, sched))
    first = sched.submit(object(), req(1, Priority.PARTIAL))
    second = sched.submit(object(), req(2, Priority.PARTIAL))
    drain(gate, 1)
    first.result(timeout=10)
    second.result(timeout=10)
    # Whether the thread took request 1 before request 2 arrived or not, it waits (up to
    # 5 s) for the batch to fill, so both run together.
    assert gate.batches == [[1, 2]]


def test_full_queue_refuses():
    sched = InferenceScheduler(lambda rs: [Recognition(()) for _ in rs], max_pending=2)
    sched.submit(object(), req(1, Priority.FINAL))
    sched.submit(object(), req(2, Priority.FINAL))
    with pytest.raises(Overloaded):
        sched.submit(object(), req(3, Priority.FINAL))
    sched.stop()


def test_a_request_cancelled_by_its_owner_takes_no_batch_slot(cleanup):
    gate, sched = make(max_batch=2)
    cleanup.append((gate, sched))
    busy(gate, sched)
    stale = sched.submit(object(), req(2, Priority.FINAL, 2))
    wanted = [sched.submit(object(), req(rid, Priority.FINAL, 2)) for rid in (3, 4)]
    lone = sched.submit(object(), req(5, Priority.FINAL, 5))
    assert stale.cancel()
    assert sched.queue_age_s()["final"] >= 0  # the cancelled head is not what ages the lane
    drain(gate, 3)
    for f in [*wanted, lone]:
        f.result(timeout=10)
    assert gate.batches == [[100], [3, 4], [5]]


def test_a_lane_of_only_cancelled_requests_does_not_stall_the_next_one(cleanup):
    gate, sched = make(max_batch=4)
    cleanup.append((gate, sched))
    busy(gate, sched)
    gone = [sched.submit(object(), req(rid, Priority.FINAL, 2)) for rid in (2, 3)]
    partial = sched.submit(object(), req(4, Priority.PARTIAL, 5))  # another window size
    for f in gone:
        assert f.cancel()
    drain(gate, 2)
    partial.result(timeout=10)
    assert gate.batches == [[100], [4]]
