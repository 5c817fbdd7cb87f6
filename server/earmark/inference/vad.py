"""Silero VAD (the ONNX model shipped inside the ``silero-vad`` wheel), per-stream state.

The model is loaded once per process; each stream keeps only its own recurrent state and the
64-sample context, so streams never share or reset each other's state.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE, WINDOW_SAMPLES

logger = logging.getLogger(__name__)

CONTEXT_SAMPLES = 64


@dataclass
class VadState:
    """One stream's recurrent state (2 x 1 x 128) and the tail of its last window."""

    state: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((2, 1, 128), dtype=np.float32)
    )
    context: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
    )


_announced = False


class SileroVad:
    """Scores 512-sample windows at 16 kHz with speech probabilities in [0, 1]."""

    def __init__(self, *, threads: int = 1) -> None:
        import onnxruntime

        path = resources.files("silero_vad") / "data" / "silero_vad.onnx"
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        # One instance per worker (live, each file-job worker): say it once.
        global _announced
        logger.log(logging.DEBUG if _announced else logging.INFO,
                   "loaded Silero VAD from %s", path)
        _announced = True

    def new_state(self) -> VadState:
        return VadState()

    def probs(self, state: VadState, samples: npt.NDArray[np.float32]) -> list[float]:
        """Scores whole windows (``len(samples)`` a multiple of 512), updating ``state``."""
        return self.probs_batch([state], [samples])[0]

    def probs_batch(
        self, states: list[VadState], windows: list[npt.NDArray[np.float32]]
    ) -> list[list[float]]:
        """Scores several streams at once: one model call per 32 ms step, streams stacked on
        the batch axis, each with its own state. ``windows[i]`` is whole windows of stream i."""
        counts = [len(w) // WINDOW_SAMPLES for w in windows]
        out: list[list[float]] = [[] for _ in windows]
        for step in range(max(counts, default=0)):
            rows = [i for i, n in enumerate(counts) if n > step]
            frames = [
                windows[i][step * WINDOW_SAMPLES : (step + 1) * WINDOW_SAMPLES] for i in rows
            ]
            x = np.stack(
                [np.concatenate([states[i].context, f]) for i, f in zip(rows, frames, strict=True)]
            )
            state = np.concatenate([states[i].state for i in rows], axis=1)
            prob, state = self._session.run(None, {"input": x, "state": state, "sr": self._sr})
            for k, i in enumerate(rows):
                states[i].state = state[:, k : k + 1, :].copy()
                states[i].context = frames[k][-CONTEXT_SAMPLES:].copy()
                out[i].append(float(prob[k, 0]))
        return out



class VadWorker:
    """Runs VAD for every live stream on one thread, batching streams that are waiting.

    Keeps the event loop free (ONNX calls are slow to share a core with the model threads) and
    costs one model call per 32 ms step for all waiting streams instead of one per stream.
    """

    def __init__(self, vad: SileroVad) -> None:
        self.vad = vad
        self._jobs: list[tuple[VadState, npt.NDArray[np.float32], Future[list[float]]]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="earmark-vad", daemon=True)
        self.calls = 0
        self.windows = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            jobs, self._jobs = self._jobs, []
            self._cond.notify_all()
        for _, _, future in jobs:
            future.cancel()
        self._thread.join(5)

    def submit(self, state: VadState, windows: npt.NDArray[np.float32]) -> Future[list[float]]:
        future: Future[list[float]] = Future()
        with self._cond:
            if self._stopping:
                future.cancel()
                return future
            self._jobs.append((state, windows, future))
            self._cond.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                jobs, self._jobs = self._jobs, []
            jobs = [j for j in jobs if j[2].set_running_or_notify_cancel()]
            # One stream may have several jobs queued: keep its windows in order, one batch
            # row per stream, by running its later jobs in a following round.
            while jobs:
                seen: set[int] = set()
                now, later = [], []
                for job in jobs:
                    (later if id(job[0]) in seen else now).append(job)
                    seen.add(id(job[0]))
                try:
                    results = self.vad.probs_batch([j[0] for j in now], [j[1] for j in now])
                except Exception as exc:  # noqa: BLE001 - fail these streams, keep running
                    logger.exception("VAD failed for %d streams", len(now))
                    for job in now:
                        job[2].set_exception(exc)
                else:
                    self.calls += 1
                    self.windows += sum(len(r) for r in results)
                    for job, result in zip(now, results, strict=True):
                        job[2].set_result(result)
                jobs = later
