"""How each lane decodes: its beam and its window (from the settings), what may share a
batch, and one batch's decode. The scheduler calls these; the models stay in ``Engine``."""

from __future__ import annotations

from earmark.config import Settings
from earmark.core.events import Priority, Recognition, RecognitionRequest
from earmark.inference.whisper import DecodeOptions, WhisperBackend, WindowPolicy


class DecodePolicy:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def beam(self, priority: Priority, asked: int | None = None) -> int:
        if asked is not None:
            return asked
        if priority is Priority.PARTIAL:
            return self.settings.partial_beam_size
        if priority is Priority.SYNC:
            return self.settings.sync_beam_size
        return self.settings.beam_size

    def window(self, priority: Priority) -> WindowPolicy:
        s = self.settings
        if priority is Priority.PARTIAL:
            return WindowPolicy(s.partial_window_bucket_s, s.partial_min_pad_s,
                                s.partial_min_window_s)
        return WindowPolicy(s.window_bucket_s, s.min_pad_s, s.min_window_s)

    def batch_key(self, backend: WhisperBackend,
                  request: RecognitionRequest) -> tuple[int, int, str]:
        frames = backend.frames_for(len(request.audio), self.window(request.priority))
        # One language per batch: a batch shares its start sequence ("auto" detects per item).
        return frames, self.beam(request.priority, request.beam_size), request.language or ""

    def decode(self, backend: WhisperBackend,
               requests: list[RecognitionRequest]) -> list[Recognition]:
        priority = requests[0].priority
        return backend.transcribe_batch(
            [r.audio for r in requests],
            # Each item's own lane and beam: the batch key made them equal, but a partial
            # (greedy) may share a batch with a greedy final, and must not take its lane's.
            [DecodeOptions(self.beam(r.priority, r.beam_size), r.hotwords, r.language,
                           r.previous_text)
             for r in requests],
            window=self.window(priority),
        )
