"""Loads the models once per process, owns the scheduler, and reads its load.

Capacity and load policy (documented in docs/design.md):
- Each live session may cost, at worst (someone talking all the time), the model time of its
  finals: ``final_cost`` model-seconds per audio-second, measured from the finals decoded so
  far (batch costs shared out per item). With ``workers`` model calls at once,
  ``capacity = capacity_headroom * workers / final_cost`` sessions; new sessions past it are
  refused. Until 20 s of finals are measured, only the configured ``max_sessions`` applies.
- Interims use what is left: their interval stretches with how long the oldest queued partial
  has waited, and they pause while the oldest queued final has waited longer than
  ``shed_partials_after_s``. Speculative (early) finals stop while a final has been queued
  for ``SPECULATE_BELOW_S``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from earmark.config import Settings
from earmark.core.events import Priority, Recognition, RecognitionRequest
from earmark.core.languages import ModelLanguages
from earmark.inference.scheduler import InferenceScheduler
from earmark.inference.speakers import SpeakerModel, SpeakerWorker
from earmark.inference.tagger import Tag, TagModel, TagWorker, load_catalogue
from earmark.inference.understanding import UnderstandingWorker
from earmark.inference.vad import SileroVad, VadWorker
from earmark.inference.whisper import (
    DecodeOptions,
    WhisperBackend,
    WindowPolicy,
    choose_device,
)

logger = logging.getLogger(__name__)

MIN_MEASURED_FINAL_S = 20.0
MAX_STRETCH = 8
SPECULATE_BELOW_S = 0.1  # oldest queued final's wait under which early finals are decoded


@dataclass(frozen=True)
class LoadPolicy:
    """What a session should do about interims right now."""

    partial_stretch: float  # multiply the partial interval by this
    shed_partials: bool  # ask for none at all
    speculate: bool = True  # decode finals early, during the endpoint silence


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
        self.workers = 1

    def load(self) -> None:
        s = self.settings
        started = time.perf_counter()
        limit_blas_threads()
        device, _ = choose_device(s.device, s.compute_type)
        cores = os.cpu_count() or 2
        workers = s.model_workers or (1 if device == "cuda" else min(2, cores))
        self.workers = workers
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
        self.scheduler = InferenceScheduler(
            self._recognize_batch,
            batch_key=self._batch_key,
            max_batch=s.max_batch or (32 if on_gpu else 4),
            max_wait_ms=s.max_wait_ms if s.max_wait_ms is not None else (10.0 if on_gpu else 0.0),
            workers=workers,
        )
        # Warm-up: the first decode allocates buffers; no user should pay for it. Low noise,
        # since digital silence never reaches the model.
        noise = np.random.default_rng(0).normal(0, 0.05, 16000).astype(np.float32)
        self.backend.transcribe(noise, DecodeOptions(beam_size=s.beam_size))
        self.scheduler.start()
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

    # ------------------------------------------------------------------ model
    def _beam(self, priority: Priority, asked: int | None = None) -> int:
        if asked is not None:
            return asked
        if priority is Priority.PARTIAL:
            return self.settings.partial_beam_size
        if priority is Priority.SYNC:
            return self.settings.sync_beam_size
        return self.settings.beam_size

    def _window(self, priority: Priority) -> WindowPolicy:
        s = self.settings
        if priority is Priority.PARTIAL:
            return WindowPolicy(s.partial_window_bucket_s, s.partial_min_pad_s,
                                s.partial_min_window_s)
        return WindowPolicy(s.window_bucket_s, s.min_pad_s, s.min_window_s)

    def _batch_key(self, request: RecognitionRequest) -> tuple[int, int, str]:
        assert self.backend is not None
        frames = self.backend.frames_for(len(request.audio), self._window(request.priority))
        # One language per batch: a batch shares its start sequence ("auto" detects per item).
        return frames, self._beam(request.priority, request.beam_size), request.language or ""

    def _recognize_batch(self, requests: list[RecognitionRequest]) -> list[Recognition]:
        assert self.backend is not None
        priority = requests[0].priority
        return self.backend.transcribe_batch(
            [r.audio for r in requests],
            # Each item's own lane and beam: the batch key made them equal, but a partial
            # (greedy) may share a batch with a greedy final, and must not take its lane's.
            [DecodeOptions(self._beam(r.priority, r.beam_size), r.hotwords, r.language,
                           r.previous_text)
             for r in requests],
            window=self._window(priority),
        )

    # ------------------------------------------------------------------- load
    def final_cost(self) -> float | None:
        """Measured model-seconds per audio-second of finals (None until enough is seen)."""
        if self.scheduler is None:
            return None
        lane = self.scheduler.stats.lanes["final"]
        if lane.audio_s < MIN_MEASURED_FINAL_S:
            return None
        return lane.busy_s / lane.audio_s

    def capacity(self) -> int:
        """Sessions this machine can hold with finals on time (at most ``max_sessions``)."""
        cost = self.final_cost()
        if cost is None or cost <= 0 or not self.settings.admit_by_capacity:
            return self.settings.max_sessions
        budget = self.settings.capacity_headroom * self.workers  # model-seconds per second
        return max(1, min(self.settings.max_sessions, math.floor(budget / cost)))

    def load_policy(self) -> LoadPolicy:
        if self.scheduler is None:
            return LoadPolicy(1.0, False)
        # Live queue ages, not averages: a signal that stops when the backlog clears.
        age = self.scheduler.queue_age_s()
        # A speculative final only pays while finals start at once; queued, it is not early
        # and, whenever the speaker goes on, it is model time thrown away.
        speculate = age["final"] < SPECULATE_BELOW_S
        if age["final"] > self.settings.shed_partials_after_s:
            return LoadPolicy(MAX_STRETCH, True, speculate)
        interval_s = self.settings.partial_interval_ms / 1000
        stretch = 1.0 + age["partial"] / interval_s
        return LoadPolicy(min(MAX_STRETCH, stretch), False, speculate)
