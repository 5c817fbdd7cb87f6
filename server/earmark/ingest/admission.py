"""What every live ingest (socket, WebRTC) shares: who may start a session, and its runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from earmark.auth import LOCAL, Principal, authenticate, limit, spend_request
from earmark.config import Settings
from earmark.core.audio import PcmDecoder
from earmark.core.events import Event, Transcript
from earmark.core.tagging import TaggingConfig
from earmark.dialects.deepgram import DeepgramEncoder, LiveOptions, session_config
from earmark.errors import (
    EarmarkError,
    InvalidParameter,
    NotFound,
    NotReady,
    Overloaded,
    RateLimited,
)
from earmark.inference.engine import Engine
from earmark.inference.tagger import Tag
from earmark.live.outbox import Outbox
from earmark.live.runner import LiveRunner
from earmark.live.speakers import SpeakerStage
from earmark.live.tagging import TagFeed
from earmark.live.topics import TopicStage
from earmark.live.understanding import TextStage


def queue_event(encoder: DeepgramEncoder, outbox: Outbox, event: Event) -> None:
    """One session event -> its JSON message in the client's outbox (interims collapse)."""
    message = encoder.encode(event)
    if message is not None:
        outbox.put(message, interim=isinstance(event, Transcript) and not event.is_final,
                   channel=encoder.channel)


def not_ready(app: Any) -> EarmarkError | None:
    if not app.state.engine.ready or app.state.draining:
        return NotReady("the server is starting or shutting down")
    return None


def admit_caller(app: Any, key: str | None) -> Principal:
    """Who opens a live session: an API key or a temporary token, with the key's request
    rate and its session limit spent. Raises Unauthorized, RateLimited or Overloaded."""
    principal = authenticate(app, key, allow_token=True)
    spend_request(app, principal)
    most = limit(app.state.settings, principal, "max_sessions")
    if principal.owner != LOCAL:
        here = sum(1 for s in app.state.sessions if getattr(s, "owner", None) == principal.owner)
        # On a shared database, the key's sessions on the other nodes count too (as of
        # their last heartbeats, at most ~2 s old).
        heartbeat = getattr(app.state, "heartbeat", None)
        elsewhere = heartbeat.elsewhere.get(principal.owner, 0) if heartbeat else 0
        if here + elsewhere >= most:
            where = f" ({elsewhere} on other nodes)" if elsewhere else ""
            raise RateLimited(f"this key already has {most} live sessions open{where}",
                              retry_after_s=5.0)
    return principal


def over_capacity(app: Any, streams: int = 1) -> EarmarkError | None:
    """Live sessions of every ingest count against one capacity; a multichannel session counts
    once per channel (each is a stream for the model)."""
    capacity = app.state.engine.capacity()
    if sum(getattr(s, "streams", 1) for s in app.state.sessions) + streams > capacity:
        app.state.metrics.sessions_refused.inc()
        return Overloaded(
            f"the server is at its capacity of {capacity} live sessions; retry later"
        )
    return None


def check_models(app: Any, options: LiveOptions) -> None:
    """Options that need the sentence model are refused when the server runs without it."""
    if app.state.engine.tag_worker is None:
        for name in ("topics", "summarize"):
            if getattr(options, name):
                raise InvalidParameter(f"{name} needs the sentence model, which this server "
                                       "runs without (--no-tagging)", param=name)


async def resolve_tags(app: Any, owner: str, options: LiveOptions) -> tuple[Tag, ...] | None:
    """The tags a session scores against (None: no tagging). An unknown ``tag_collection``
    is the client's error, reported before the session starts."""
    engine: Engine = app.state.engine
    if not options.tagging or engine.tag_worker is None:
        return None
    if options.tag_collection is None:
        return engine.catalogue
    try:
        found = await asyncio.to_thread(app.state.tag_collections.get, owner,
                                        options.tag_collection)
    except NotFound:
        raise InvalidParameter(f"no tag collection named {options.tag_collection!r} for this "
                               "API key", param="tag_collection") from None
    return found.tags


def new_runner(
    settings: Settings,
    engine: Engine,
    options: LiveOptions,
    decoder: PcmDecoder,
    emit: Callable[[Event], None],
    tags: tuple[Tag, ...] | None = None,
) -> LiveRunner:
    assert engine.vad_worker is not None and engine.scheduler is not None
    topics = None
    if options.topics and engine.tag_worker is not None:
        topics = TopicStage(engine.tag_worker, emit, custom=options.custom_topics,
                            custom_only=options.custom_topics_only)
        emit = topics.on_event
    stage = None
    if options.text.active:
        stage = TextStage(engine.understanding, options.text, emit)
        emit = stage.on_event
    speakers = None
    if options.diarize:
        speakers = SpeakerStage(engine.speaker_worker, emit,
                                max_speakers=options.diarize_speakers)
        emit = speakers.on_event
    feed = None
    if tags is not None and engine.tag_worker is not None:
        feed = TagFeed(engine.tag_worker, tags, options.seed_sentence, emit,
                       TaggingConfig(window_s=settings.tag_window_s,
                                     min_interval_s=settings.tag_interval_s))
    return LiveRunner(
        config=session_config(
            options,
            partial_interval_ms=settings.partial_interval_ms,
            max_utterance_s=settings.max_utterance_s,
            vad_threshold=settings.vad_threshold,
            music_threshold=settings.music_threshold,
            finalize_beam_size=settings.finalize_beam_size,
            finalize_early_ms=settings.finalize_early_ms,
        ),
        decoder=decoder,
        vad=engine.vad_worker,
        scheduler=engine.scheduler,
        emit=emit,
        load_policy=engine.load_policy,
        tag_feed=feed,
        text_stage=stage,
        speaker_stage=speakers,
        topic_stage=topics,
    )
