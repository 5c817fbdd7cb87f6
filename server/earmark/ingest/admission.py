"""What every live ingest (socket, WebRTC) shares: who may start a session, and its runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from earmark.config import Settings
from earmark.core.audio import PcmDecoder
from earmark.core.events import Event
from earmark.dialects.deepgram import LiveOptions, session_config
from earmark.errors import EarmarkError, NotReady, Overloaded
from earmark.inference.engine import Engine
from earmark.live.runner import LiveRunner


def not_ready(app: Any) -> EarmarkError | None:
    if not app.state.engine.ready or app.state.draining:
        return NotReady("the server is starting or shutting down")
    return None


def over_capacity(app: Any) -> EarmarkError | None:
    """Live sessions of every ingest count against one capacity."""
    capacity = app.state.engine.capacity()
    if len(app.state.sessions) >= capacity:
        app.state.metrics.sessions_refused.inc()
        return Overloaded(
            f"the server is at its capacity of {capacity} live sessions; retry later"
        )
    return None


def new_runner(
    settings: Settings,
    engine: Engine,
    options: LiveOptions,
    decoder: PcmDecoder,
    emit: Callable[[Event], None],
) -> LiveRunner:
    assert engine.vad_worker is not None and engine.scheduler is not None
    return LiveRunner(
        config=session_config(
            options,
            partial_interval_ms=settings.partial_interval_ms,
            max_utterance_s=settings.max_utterance_s,
            vad_threshold=settings.vad_threshold,
        ),
        decoder=decoder,
        vad=engine.vad_worker,
        scheduler=engine.scheduler,
        emit=emit,
        load_policy=engine.load_policy,
    )
