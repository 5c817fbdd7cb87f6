"""Capacity and load policy read from the scheduler's measured costs and queue ages
(``LoadGauge``), and the lanes' decode policy (``DecodePolicy``)."""

import numpy as np

from earmark.config import Settings
from earmark.core.events import Priority, Recognition, RecognitionRequest
from earmark.inference.decode_policy import DecodePolicy
from earmark.inference.load_gauge import LoadGauge
from earmark.inference.scheduler import InferenceScheduler


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def gauge_with(settings: Settings, clock: Clock | None = None) -> LoadGauge:
    scheduler = InferenceScheduler(lambda rs: [Recognition(()) for _ in rs],
                                   clock=clock or Clock())
    return LoadGauge(settings, scheduler, workers=2)


def test_capacity_is_the_configured_limit_until_finals_are_measured():
    gauge = gauge_with(Settings(max_sessions=50, capacity_headroom=0.8))
    assert gauge.capacity() == 50
    lane = gauge.scheduler.stats.lanes["final"]
    lane.audio_s, lane.busy_s = 100.0, 10.0  # 0.1 model-s per audio-s
    # 0.8 headroom x 2 workers / 0.1 = 16 sessions
    assert gauge.capacity() == 16
    assert gauge_with(Settings(max_sessions=10)).capacity() == 10


def test_capacity_admission_can_be_turned_off():
    gauge = gauge_with(Settings(max_sessions=50, admit_by_capacity=False))
    lane = gauge.scheduler.stats.lanes["final"]
    lane.audio_s, lane.busy_s = 100.0, 10.0
    assert gauge.capacity() == 50


def test_interims_stretch_with_partial_backlog_and_pause_when_finals_wait():
    clock = Clock()
    gauge = gauge_with(Settings(partial_interval_ms=400, shed_partials_after_s=0.5), clock)
    sched = gauge.scheduler
    assert gauge.load_policy().partial_stretch == 1.0
    audio = np.zeros(1600, np.float32)
    sched.submit(object(), RecognitionRequest(1, Priority.PARTIAL, 0, audio))
    clock.now = 0.8  # the queued partial has waited two intervals
    policy = gauge.load_policy()
    assert policy.partial_stretch == 3.0 and not policy.shed_partials and policy.speculate
    sched.submit(object(), RecognitionRequest(2, Priority.FINAL, 0, audio))
    clock.now = 0.85  # a final just queued: early finals still pay
    assert gauge.load_policy().speculate
    clock.now = 1.0  # it has waited 0.2 s: no new speculation
    assert not gauge.load_policy().speculate and not gauge.load_policy().shed_partials
    clock.now = 1.4  # a final has waited 0.6 s > 0.5 s
    assert gauge.load_policy().shed_partials
    sched.stop()


def test_a_greedy_final_and_an_interim_in_one_batch_decode_with_their_own_beams():
    """``--finalize-beam-size 1``: the final that answers a Finalize has the interims' beam
    and, at some lengths, their window, so the two share a batch. Each must keep its own
    beam (the batch took the first item's lane's and the model refused the mix: a crash)."""
    from earmark.inference.whisper import WhisperBackend

    policy = DecodePolicy(Settings(finalize_beam_size=1))
    backend = WhisperBackend(None, device="cpu", cpu_threads=2)
    for seconds in range(2, 28):
        audio = np.zeros(seconds * 16000, np.float32)
        final = RecognitionRequest(1, Priority.FINAL, 0, audio, beam_size=1)
        partial = RecognitionRequest(2, Priority.PARTIAL, 0, audio)
        if policy.batch_key(backend, final) == policy.batch_key(backend, partial):
            break
    else:
        raise AssertionError("no length where they share a batch")
    assert len(policy.decode(backend, [final, partial])) == 2
    assert len(policy.decode(backend, [partial, final])) == 2
