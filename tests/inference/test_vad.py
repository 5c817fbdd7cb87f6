"""Silero VAD: batched streams give the same probabilities as one stream at a time."""

import numpy as np
import pytest

from earmark.inference.vad import SileroVad, VadWorker


@pytest.fixture(scope="module")
def vad():
    return SileroVad()


def test_batched_streams_match_sequential_and_keep_their_own_state(vad, speak):
    a = speak("I would like to order a large pizza").astype(np.float32) / 32768
    b = np.random.default_rng(1).normal(0, 0.01, 16000).astype(np.float32)
    a, b = a[: len(a) // 512 * 512], b[: len(b) // 512 * 512]
    seq = [vad.probs(vad.new_state(), x) for x in (a, b)]
    states = [vad.new_state(), vad.new_state()]
    # Uneven chunks, streams stacked: the result must not depend on the batching.
    batched: list[list[float]] = [[], []]
    pos = [0, 0]
    for step in (3, 7, 1, 50, 1000):
        chunks = [x[p : p + step * 512] for x, p in zip((a, b), pos, strict=True)]
        for i, r in enumerate(vad.probs_batch(states, chunks)):
            batched[i] += r
            pos[i] += len(chunks[i])
    for s, bt in zip(seq, batched, strict=True):
        np.testing.assert_allclose(s, bt, atol=1e-5)
    assert max(seq[0]) > 0.8 and max(seq[1]) < 0.5  # speech and noise are told apart


def test_worker_serves_many_streams(vad):
    worker = VadWorker(vad)
    worker.start()
    try:
        x = np.random.default_rng(2).normal(0, 0.01, 512 * 10).astype(np.float32)
        futures = [worker.submit(vad.new_state(), x) for _ in range(8)]
        results = [f.result(timeout=10) for f in futures]
        assert all(len(r) == 10 for r in results)
        np.testing.assert_allclose(results[0], results[7], atol=1e-6)
    finally:
        worker.stop()
