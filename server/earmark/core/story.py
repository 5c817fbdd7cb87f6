"""A stream's words so far, as sentences, for rolling summaries and chapters (stream jobs).

Pure: the words come in segment by segment; ``sentences()`` re-splits all of them, so a
sentence that crossed a segment boundary is whole again. Embeddings are the caller's (and are
cached by sentence text there), so each segment embeds only its new sentences.
"""

from __future__ import annotations

from collections.abc import Iterable

from earmark.core.events import Word
from earmark.core.messages import Message, sentences


class StorySoFar:
    def __init__(self, max_words: int = 50_000) -> None:
        self.max_words = max_words  # about 6 hours of talk: older words roll off
        self._words: list[Word] = []

    def add(self, words: Iterable[Word]) -> None:
        self._words.extend(w for w in words if w.text.strip())
        if len(self._words) > self.max_words:
            del self._words[: len(self._words) - self.max_words]

    def sentences(self) -> list[Message]:
        return sentences([self._words]) if self._words else []
