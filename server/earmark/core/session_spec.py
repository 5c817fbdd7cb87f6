"""What a live session does, whatever dialect asked for it: each dialect parses its own
request into a ``SessionSpec`` (the Deepgram socket: ``LiveOptions.spec()``; stream jobs and
tagging sessions: ``ingest/pull_session``), and ``live/factory`` joins it with the server's
policy. Times are in 16 kHz samples; each feature has its own typed sub-spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from earmark.core import SAMPLE_RATE
from earmark.core.text_options import TextOptions


@dataclass(frozen=True)
class SpeakersSpec:
    """A speaker label on every word (diarization)."""

    max_speakers: int | None = None  # None: estimated


@dataclass(frozen=True)
class TopicsSpec:
    """Topics of each final: IAB categories, the caller's own, or both."""

    custom: tuple[str, ...] = ()
    custom_only: bool = False


@dataclass(frozen=True)
class TagsSpec:
    """Rolling tags against a collection (resolved when the session is admitted)."""

    seed_sentence: str | None = None


@dataclass(frozen=True)
class SessionSpec:
    interim_results: bool = True
    # Silence that ends an utterance; None: no endpoint is reported (speech_final stays
    # false) and utterances end after the default silence.
    endpointing_samples: int | None = SAMPLE_RATE // 2
    utterance_end_samples: int | None = None
    vad_events: bool = False
    language: str = "en"  # a language code, or "auto": each final in the language heard
    hotwords: str | None = None
    agreement: bool = True  # finals by local agreement of interims (not over Opus)
    whole_sentences: bool = False  # the caller analyses the text afterwards (stream jobs)
    text: TextOptions = TextOptions()
    speakers: SpeakersSpec | None = None
    topics: TopicsSpec | None = None
    tags: TagsSpec | None = None
    summarize: bool = False  # a summary of the stream when it ends

    @property
    def reads_whole_sentences(self) -> bool:
        """Analyses of each final (redaction, topics, sentiment, entities, the speaker of its
        audio) need whole phrases: a phone number said "555 ... 4567" and cut at the pause
        into two finals was no longer recognised as one (its first half was heard in
        redacted audio), and a voice is told less well from a short final."""
        text = self.text
        return bool(self.whole_sentences or self.speakers or text.redact or text.sentiment
                    or text.entities or text.highlights or self.topics or self.summarize)
