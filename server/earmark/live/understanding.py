"""Applies a session's text options (redaction, profanity, replace, sentiment, entities) to
its transcripts, in order, before they are sent.

Every transcript (interims too: a redacted final must not have leaked in its interims) goes
to the understanding worker; see ``OrderedStage`` for the ordering.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

from earmark.core.events import Event, Transcript
from earmark.core.text_options import TextOptions
from earmark.inference.understanding import UnderstandingWorker, Understood
from earmark.live.ordered import OrderedStage


class TextStage(OrderedStage):
    def __init__(self, worker: UnderstandingWorker, options: TextOptions,
                 emit: Callable[[Event], None]) -> None:
        super().__init__(emit)
        self.worker = worker
        self.options = options

    def submit(self, event: Transcript) -> Future[Understood] | None:
        return self.worker.submit(event.words, self.options) if event.words else None

    def apply(self, event: Transcript, result: Understood) -> Event:
        sentiment = (result.sentiment.label, result.sentiment.score) \
            if result.sentiment else None
        return replace(event, words=result.words, sentiment=sentiment,
                       entities=tuple((e.label, e.text, e.start_sample, e.end_sample)
                                      for e in result.entities))

    def failed(self, event: Transcript) -> Event:
        return replace(event, words=())  # the options are extra, but never send unredacted text
