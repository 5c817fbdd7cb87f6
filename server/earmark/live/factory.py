"""The one factory of live runners: a session's spec (what the client asked, any dialect)
joined with the server's policy (``LivePolicy``, from the settings) and its models.

The stages an event passes through, in this order: speakers (labels each word from its
audio), text options (redaction, sentiment, entities, ...), topics (of the final text). A new
stage is one entry in ``_stage_makers``; the order is the list's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from earmark.config import Settings
from earmark.core import SAMPLE_RATE, WINDOW_SAMPLES
from earmark.core.audio import PcmDecoder
from earmark.core.events import Event
from earmark.core.segmenter import SegmenterConfig
from earmark.core.session import SessionConfig
from earmark.core.session_spec import SessionSpec
from earmark.core.tagging import TaggingConfig
from earmark.inference.engine import Engine
from earmark.inference.tagger import Tag
from earmark.live.ordered import OrderedStage
from earmark.live.runner import LiveRunner
from earmark.live.speakers import SpeakerStage
from earmark.live.tagging import TagFeed
from earmark.live.topics import TopicStage
from earmark.live.understanding import TextStage

# The shortest silence that ends an utterance, whatever ``endpointing`` asks: each endpoint
# cuts the audio the final is decoded from. LiveKit's plugin sends endpointing=25, and on
# continuous talk (benchmarks/policy_replay.py, tiny.en) finals' WER was 9.5 % at 25 ms,
# 7.3 % at 100, 6.6 % at 200 and 6.8 % at 300 (offline 7.5 %): a 32 ms dip between two
# words ended the utterance ("Today we will..." / "So I'll come out of the weather").
# Gapped speech: 5.6 / 6.1 / 6.6 / 6.6 %.
MIN_ENDPOINT_SAMPLES = SAMPLE_RATE // 10
DEFAULT_ENDPOINT_SAMPLES = SAMPLE_RATE // 2  # when the client turned endpointing off


@dataclass(frozen=True)
class LivePolicy:
    """The server's side of a live session (``Settings``)."""

    partial_interval_ms: int = 400
    max_utterance_s: float = 15.0
    vad_threshold: float = 0.5
    music_threshold: float | None = None
    finalize_beam_size: int | None = None
    finalize_early_ms: int | None = None
    tag_window_s: float = 60.0
    tag_interval_s: float = 3.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LivePolicy:
        return cls(partial_interval_ms=settings.partial_interval_ms,
                   max_utterance_s=settings.max_utterance_s,
                   vad_threshold=settings.vad_threshold,
                   music_threshold=settings.music_threshold,
                   finalize_beam_size=settings.finalize_beam_size,
                   finalize_early_ms=settings.finalize_early_ms,
                   tag_window_s=settings.tag_window_s, tag_interval_s=settings.tag_interval_s)


def session_config(spec: SessionSpec, policy: LivePolicy) -> SessionConfig:
    """The core's configuration for one stream (everything in samples)."""
    silence = max(MIN_ENDPOINT_SAMPLES, spec.endpointing_samples
                  if spec.endpointing_samples is not None else DEFAULT_ENDPOINT_SAMPLES)
    whole = spec.reads_whole_sentences
    early = policy.finalize_early_ms
    return SessionConfig(
        interim_results=spec.interim_results,
        partial_interval_samples=policy.partial_interval_ms * SAMPLE_RATE // 1000,
        speech_final=spec.endpointing_samples is not None,
        max_utterance_samples=int(policy.max_utterance_s * SAMPLE_RATE),
        utterance_end_samples=spec.utterance_end_samples,
        vad_events=spec.vad_events,
        hotwords=spec.hotwords,
        language=spec.language,
        music_threshold=policy.music_threshold,
        finalize_beam_size=policy.finalize_beam_size,
        finalize_early_samples=(None if early is None
                                else max(WINDOW_SAMPLES, early * SAMPLE_RATE // 1000)),
        # Finals inside an utterance (local agreement, pause cuts) only where nothing reads
        # whole sentences; otherwise at endpoints, as before.
        agreement_margin_samples=(None if whole or not spec.agreement
                                  else SessionConfig.agreement_margin_samples),
        pause_cut_after_samples=None if whole else SessionConfig.pause_cut_after_samples,
        segmenter=SegmenterConfig(
            threshold=policy.vad_threshold,
            neg_threshold=max(0.01, policy.vad_threshold - 0.15),
            silence_samples=silence,
            pad_samples=min(3200, silence),
        ),
    )


StageMaker = Callable[[Callable[[Event], None]], OrderedStage]


def _stage_makers(spec: SessionSpec, engine: Engine) -> list[StageMaker]:
    """The spec's stages, in the order events pass through them."""
    makers: list[StageMaker] = []
    if spec.speakers is not None:
        speakers = spec.speakers
        makers.append(lambda emit: SpeakerStage(engine.speaker_worker, emit,
                                                max_speakers=speakers.max_speakers))
    if spec.text.active:
        makers.append(lambda emit: TextStage(engine.understanding, spec.text, emit))
    if spec.topics is not None and engine.tag_worker is not None:
        topics, worker = spec.topics, engine.tag_worker
        makers.append(lambda emit: TopicStage(worker, emit, custom=topics.custom,
                                              custom_only=topics.custom_only))
    return makers


def new_runner(policy: LivePolicy, engine: Engine, spec: SessionSpec, decoder: PcmDecoder,
               emit: Callable[[Event], None], tags: tuple[Tag, ...] | None = None
               ) -> LiveRunner:
    """A runner for one stream: ``emit`` gets its events after every stage."""
    assert engine.vad_worker is not None and engine.scheduler is not None
    stages: list[OrderedStage] = []
    for make in reversed(_stage_makers(spec, engine)):
        stage = make(emit)
        stages.insert(0, stage)
        emit = stage.on_event
    feed = None
    if tags is not None and engine.tag_worker is not None:
        # Tags read the finals as the runner emits them (before the stages).
        feed = TagFeed(engine.tag_worker, tags,
                       spec.tags.seed_sentence if spec.tags is not None else None, emit,
                       TaggingConfig(window_s=policy.tag_window_s,
                                     min_interval_s=policy.tag_interval_s))
    return LiveRunner(config=session_config(spec, policy), decoder=decoder,
                      vad=engine.vad_worker, scheduler=engine.scheduler, emit=emit,
                      load_policy=engine.load_policy, tag_feed=feed, stages=stages)
