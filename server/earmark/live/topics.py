"""Topics of each live final (``topics=true``, ``custom_topic``): the final's text goes to the
tag worker's topic model (``inference/topics.py``); interims pass as they are."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from earmark.core.events import Event, Transcript
from earmark.inference.topics import TopicLabel
from earmark.live.ordered import OrderedStage

Found = tuple[tuple[TopicLabel, ...], tuple[TopicLabel, ...]]


class TopicStage(OrderedStage):
    def __init__(self, tagger: Any, emit: Callable[[Event], None], *,
                 custom: tuple[str, ...] = (), custom_only: bool = False) -> None:
        super().__init__(emit)
        self.tagger = tagger
        self.custom = custom
        self.custom_only = custom_only

    def submit(self, event: Transcript) -> Future[Found] | None:
        if not event.is_final or not event.text:
            return None
        future: Future[Found] = self.tagger.topics(event.text, self.custom)
        return future

    def apply(self, event: Transcript, result: Found) -> Event:
        iab, custom = result
        found = list(custom) + ([] if self.custom_only else list(iab))
        return replace(event, topics=tuple((t.label, t.relevance) for t in found))

    def failed(self, event: Transcript) -> Event:
        return event  # the words matter more than their topics
