"""What every live ingest shares: who may start a session, and the factory of its parts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from earmark.auth import LOCAL, Principal, authenticate, limit, spend_request
from earmark.core.audio import PcmDecoder
from earmark.core.events import Event
from earmark.dialects.deepgram import DeepgramEncoder, LiveOptions
from earmark.errors import InvalidParameter, NotFound
from earmark.inference.engine import Engine
from earmark.inference.tagger import Tag
from earmark.ingest.services import LiveServices
from earmark.live.factory import LivePolicy, new_runner
from earmark.live.runner import LiveRunner
from earmark.live.session import LiveSession, SessionParts, Transport


def admit_caller(services: LiveServices, key: str | None) -> Principal:
    """Who opens a live session: an API key or a temporary token, with the key's request
    rate and its session limit spent. Raises Unauthorized or RateLimited."""
    principal = authenticate(services.access, key, allow_token=True)
    spend_request(services.access, principal)
    if principal.owner != LOCAL:
        most = limit(services.settings, principal, "max_sessions")
        refusal = services.sessions.over_key_limit(principal.owner, most)
        if refusal is not None:
            raise refusal
    return principal


def check_models(engine: Engine, options: LiveOptions) -> None:
    """Options that need the sentence model are refused when the server runs without it."""
    if engine.tag_worker is None:
        for name in ("topics", "summarize"):
            if getattr(options, name):
                raise InvalidParameter(f"{name} needs the sentence model, which this server "
                                       "runs without (--no-tagging)", param=name)


async def resolve_tags(services: LiveServices, owner: str,
                       options: LiveOptions) -> tuple[Tag, ...] | None:
    """The tags a session scores against (None: no tagging). An unknown ``tag_collection``
    is the client's error, reported before the session starts."""
    engine = services.engine
    if not options.tagging or engine.tag_worker is None:
        return None
    if options.tag_collection is None:
        return engine.catalogue
    try:
        found = await asyncio.to_thread(services.tag_collections.get, owner,
                                        options.tag_collection)
    except NotFound:
        raise InvalidParameter(f"no tag collection named {options.tag_collection!r} for this "
                               "API key", param="tag_collection") from None
    return found.tags


def open_session(services: LiveServices, options: LiveOptions, transport: Transport, *,
                 request_id: str, owner: str | None, tags: tuple[Tag, ...] | None,
                 decoder_for: Callable[[int | None], PcmDecoder]) -> LiveSession:
    """The one factory of client sessions: the client's options (the Deepgram dialect's
    spec) joined with the server's settings and models. ``decoder_for(channel)`` reads the
    transport's audio (channel None: every channel mixed to one stream)."""
    settings, engine = services.settings, services.engine
    n = options.channels if options.multichannel else 1
    encoders = [DeepgramEncoder(request_id=request_id, model_name=engine.model_name,
                                options=options, channel=i, channels=n) for i in range(n)]

    spec, policy = options.spec(), LivePolicy.from_settings(settings)

    def build(channel: int | None, emit: Callable[[Event], None]) -> LiveRunner:
        return new_runner(policy, engine, spec, decoder_for(channel), emit, tags)

    parts = SessionParts(
        encoders=encoders, build_runner=build, metadata_channels=options.channels,
        outbox_max_messages=settings.outbox_max_messages, summarize=options.summarize,
        embed=engine.tag_worker.embed if engine.tag_worker is not None else None)
    return LiveSession(transport, parts, request_id=request_id, owner=owner,
                       pulls_url=options.url is not None)
