"""Puts a speaker label on every word of a live stream (``diarize=true``, stream jobs'
``speaker_labels``): the transcript's audio goes to the speaker worker, each word takes the
label of the window centred nearest its middle. Runs before the text options, so redacted
and replaced words keep their speaker.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from earmark.core.audio import AudioBuffer
from earmark.core.events import Event, Transcript
from earmark.core.speakers import LiveSpeakers, label_at
from earmark.inference.speakers import SpeakerWorker, live_clusterer
from earmark.live.ordered import OrderedStage

KEEP_S = 60  # audio kept for transcripts still on their way (finals come within seconds)


class SpeakerStage(OrderedStage):
    def __init__(self, worker: SpeakerWorker, emit: Callable[[Event], None], *,
                 max_speakers: int | None = None) -> None:
        super().__init__(emit)
        self.worker = worker
        self.speakers = LiveSpeakers(live_clusterer(max_speakers, worker.model),
                                     max_speakers=max_speakers)
        self.audio = AudioBuffer()
        self._last = 0  # the speaker of the last window of the last final

    def receive_audio(self, samples: npt.NDArray[np.float32]) -> None:
        """The session's 16 kHz audio, as it is fed to the session (same timeline)."""
        self.audio.append(samples)
        if self.audio.end_sample - self.audio.start_sample > 1.5 * KEEP_S * 16000:
            self.audio.trim_before(self.audio.end_sample - KEEP_S * 16000)

    def submit(self, event: Transcript) -> Future[Any] | None:
        if not event.is_final:
            # Interims come every few hundred ms and grow: embedding each would queue the
            # worker behind them. They carry the last voice a final was given instead.
            if not event.words:
                return None
            done: Future[Any] = Future()
            done.set_result(self._last)
            return done
        start = max(event.start_sample, self.audio.start_sample)
        end = min(event.end_sample, self.audio.end_sample)
        if not event.words or end <= start:
            return None
        return self.worker.submit(self.audio.slice(start, end), self.speakers,
                                  learn=True, offset=start)

    def apply(self, event: Transcript, result: Any) -> Event:
        if isinstance(result, int):  # an interim: the last voice heard
            return replace(event, words=tuple(replace(w, speaker=result) for w in event.words))
        centres, labels = result
        if not len(centres):
            return event
        self._last = labels[-1]
        words = tuple(replace(w, speaker=label_at(centres, labels,
                                                  (w.start_sample + w.end_sample) // 2))
                      for w in event.words)
        return replace(event, words=words)

    def failed(self, event: Transcript) -> Event:
        return event  # words without speakers rather than no words
