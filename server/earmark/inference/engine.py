"""Loads the models once per process and hands out the scheduler and VAD to sessions."""

from __future__ import annotations

import logging
import time

import numpy as np

from earmark.config import Settings
from earmark.core.events import Priority, Recognition, RecognitionRequest
from earmark.inference.scheduler import InferenceScheduler
from earmark.inference.vad import SileroVad
from earmark.inference.whisper import DecodeOptions, WhisperBackend

logger = logging.getLogger(__name__)


class Engine:
    """Model owner for the app: built in the lifespan, never at import."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend: WhisperBackend | None = None
        self.vad: SileroVad | None = None
        self.scheduler: InferenceScheduler | None = None
        self.ready = False

    def load(self) -> None:
        s = self.settings
        started = time.perf_counter()
        self.backend = WhisperBackend(
            s.model,
            device=s.device,
            compute_type=s.compute_type,
            cpu_threads=s.cpu_threads,
            window_bucket_s=s.window_bucket_s,
            min_window_s=s.min_window_s,
            min_pad_s=s.min_pad_s,
        )
        self.vad = SileroVad()
        self.scheduler = InferenceScheduler(self._recognize)
        self.scheduler.start()
        # Warm-up: the first decode allocates buffers; no user should pay for it.
        self.backend.transcribe(np.zeros(16000, dtype=np.float32), DecodeOptions())
        self.ready = True
        logger.info("models ready in %.1f s", time.perf_counter() - started)

    def close(self) -> None:
        self.ready = False
        if self.scheduler is not None:
            self.scheduler.stop()

    @property
    def model_name(self) -> str:
        return self.backend.name if self.backend else "unloaded"

    @property
    def multilingual(self) -> bool:
        return bool(self.backend and self.backend.multilingual)

    def _recognize(self, request: RecognitionRequest) -> Recognition:
        assert self.backend is not None
        beam = (
            self.settings.partial_beam_size
            if request.priority is Priority.PARTIAL
            else self.settings.beam_size
        )
        return self.backend.transcribe(request.audio, DecodeOptions(beam, request.hotwords))
