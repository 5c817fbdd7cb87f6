"""Loads the models once per process and owns them and the scheduler. How each lane decodes
is ``DecodePolicy`` (inference/decode_policy.py); capacity and load are ``LoadGauge``
(inference/load_gauge.py, documented in docs/design.md)."""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from earmark.config import Settings
from earmark.core.languages import ModelLanguages
from earmark.inference.decode_policy import DecodePolicy
from earmark.inference.load_gauge import LoadGauge, LoadPolicy
from earmark.inference.scheduler import InferenceScheduler
from earmark.inference.speakers import SpeakerModel, SpeakerWorker
from earmark.inference.tagger import Tag, TagModel, TagWorker, load_catalogue
from earmark.inference.understanding import UnderstandingWorker
from earmark.inference.vad import SileroVad, VadWorker
from earmark.inference.whisper import (
    DecodeOptions,
    WhisperBackend,
    choose_device,
)

logger = logging.getLogger(__name__)


def limit_blas_threads() -> None:
    """One BLAS thread for the process. Our BLAS calls are small (mel filterbanks, cosine
    scores); with OpenBLAS's default of a thread per core its helper threads spin after each
    call and took 0.2 of a core from the speech model at 8 streams on 2 cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class Engine:
    """Model owner for the app: built in the lifespan, never at import."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend: WhisperBackend | None = None
        self.vad: SileroVad | None = None
        self.vad_worker: VadWorker | None = None
        self.scheduler: InferenceScheduler | None = None
        self.tag_worker: TagWorker | None = None
        self.catalogue: tuple[Tag, ...] = ()
        self.languages = ModelLanguages()
        # Text options' models load on first use, on this worker's thread.
        self.understanding = UnderstandingWorker()
        self.speakers = SpeakerModel()  # loads on the first diarization
        self.speaker_worker = SpeakerWorker(self.speakers)  # live speaker labels
        self.ready = False
        self.decode = DecodePolicy(settings)
        self.gauge = LoadGauge(settings)  # measures once the scheduler runs

    def load(self) -> None:
        s = self.settings
        started = time.perf_counter()
        limit_blas_threads()
        device, _ = choose_device(s.device, s.compute_type)
        cores = os.cpu_count() or 2
        workers = s.model_workers or (1 if device == "cuda" else min(2, cores))
        self.backend = WhisperBackend(
            s.model,
            device=s.device,
            compute_type=s.compute_type,
            cpu_threads=s.cpu_threads or max(1, cores // workers),
            num_workers=workers,
            window_bucket_s=s.window_bucket_s,
            min_window_s=s.min_window_s,
            min_pad_s=s.min_pad_s,
            detect_music=s.music_threshold < 1,
        )
        on_gpu = self.backend.device == "cuda"
        self.languages = self.backend.model_languages()
        self.vad = SileroVad()
        self.vad_worker = VadWorker(self.vad)
        self.vad_worker.start()
        backend = self.backend
        self.scheduler = InferenceScheduler(
            lambda requests: self.decode.decode(backend, requests),
            batch_key=lambda request: self.decode.batch_key(backend, request),
            max_batch=s.max_batch or (32 if on_gpu else 4),
            max_wait_ms=s.max_wait_ms if s.max_wait_ms is not None else (10.0 if on_gpu else 0.0),
            workers=workers,
        )
        # Warm-up: the first decode allocates buffers; no user should pay for it. Low noise,
        # since digital silence never reaches the model.
        noise = np.random.default_rng(0).normal(0, 0.05, 16000).astype(np.float32)
        self.backend.transcribe(noise, DecodeOptions(beam_size=s.beam_size))
        self.scheduler.start()
        self.gauge = LoadGauge(s, self.scheduler, workers)
        if s.tagging:
            self.catalogue = load_catalogue()
            self.tag_worker = TagWorker(TagModel(s.tag_model), nice=s.background_nice)
            self.tag_worker.submit(self.catalogue, "warm up the tag model", None).result()
        self.ready = True
        logger.info("models ready in %.1f s", time.perf_counter() - started)

    def close(self) -> None:
        self.ready = False
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.vad_worker is not None:
            self.vad_worker.stop()
        if self.tag_worker is not None:
            self.tag_worker.close()
        self.speaker_worker.close()
        self.understanding.close()

    @property
    def model_name(self) -> str:
        return self.backend.name if self.backend else "unloaded"

    @property
    def multilingual(self) -> bool:
        return bool(self.backend and self.backend.multilingual)

    # ------------------------------------------------------------------- load
    def final_cost(self) -> float | None:
        return self.gauge.final_cost()

    def capacity(self) -> int:
        return self.gauge.capacity()

    def load_policy(self) -> LoadPolicy:
        return self.gauge.load_policy()
