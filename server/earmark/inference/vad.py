"""Silero VAD (the ONNX model shipped inside the ``silero-vad`` wheel), per-stream state.

The model is loaded once per process; each stream keeps only its own recurrent state and the
64-sample context, so streams never share or reset each other's state.
"""

from __future__ import annotations

import logging
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
        logger.info("loaded Silero VAD from %s", path)

    def new_state(self) -> VadState:
        return VadState()

    def probs(self, state: VadState, samples: npt.NDArray[np.float32]) -> list[float]:
        """Scores whole windows (``len(samples)`` a multiple of 512), updating ``state``."""
        n = len(samples) // WINDOW_SAMPLES
        out: list[float] = []
        for i in range(n):
            window = samples[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]
            x = np.concatenate([state.context, window])[None, :]
            prob, state.state = self._session.run(
                None, {"input": x, "state": state.state, "sr": self._sr}
            )
            state.context = window[-CONTEXT_SAMPLES:].copy()
            out.append(float(prob[0, 0]))
        return out
