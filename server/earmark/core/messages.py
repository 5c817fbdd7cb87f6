"""Conversation messages from recognised words: one message per sentence.

A message ends after a word with sentence punctuation, at a pause of ``max_pause_samples``,
at a chunk boundary (chunks end in silence), or when it reaches ``max_words``. Messages from
several channels are merged by start time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from earmark.core.events import Word

_ENDINGS = (".", "?", "!", "…")
# "Mr." and friends end with a period but rarely end a sentence.
_NOT_ENDINGS = frozenset({"mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "etc.", "e.g.", "i.e.",
                          "jr.", "sr.", "prof.", "no."})


@dataclass(frozen=True)
class Message:
    """One sentence. Word times are samples on the file's timeline."""

    channel: int  # 1-based; 1 for mixed-down audio
    words: tuple[Word, ...]
    speaker: int | None = None  # 0-based, from diarization

    @property
    def start_sample(self) -> int:
        return self.words[0].start_sample

    @property
    def end_sample(self) -> int:
        return self.words[-1].end_sample

    @property
    def text(self) -> str:
        return " ".join(w.text.strip() for w in self.words if w.text.strip())


def _ends_sentence(text: str) -> bool:
    word = text.strip()
    return word.endswith(_ENDINGS) and word.lower() not in _NOT_ENDINGS


def sentences(
    chunks: Iterable[Sequence[Word]],
    *,
    channel: int = 1,
    max_pause_samples: int = 24000,
    max_words: int = 60,
) -> list[Message]:
    """Splits each chunk's words (file-timeline samples, in order) into sentences."""
    messages: list[Message] = []
    for words in chunks:
        current: list[Word] = []
        for word in words:
            if not word.text.strip():
                continue
            if current and (word.start_sample - current[-1].end_sample > max_pause_samples
                            or len(current) >= max_words):
                messages.append(Message(channel, tuple(current)))
                current = []
            current.append(word)
            if _ends_sentence(word.text):
                messages.append(Message(channel, tuple(current)))
                current = []
        if current:
            messages.append(Message(channel, tuple(current)))
    return messages


def split_by_speaker(messages: Iterable[Message],
                     speaker_of: Callable[[Word], int | None]) -> list[Message]:
    """Cuts each message where the speaker changes; each piece gets its speaker."""
    out: list[Message] = []
    for message in messages:
        run: list[Word] = []
        current: int | None = None
        for word in message.words:
            who = speaker_of(word)
            if run and who != current:
                out.append(Message(message.channel, tuple(run), current))
                run = []
            current = who
            run.append(word)
        if run:
            out.append(Message(message.channel, tuple(run), current))
    return out


def merge_channels(per_channel: Iterable[list[Message]]) -> list[Message]:
    """Messages of every channel in start order (ties: lower channel first)."""
    merged = [m for messages in per_channel for m in messages]
    merged.sort(key=lambda m: (m.start_sample, m.channel))
    return merged
