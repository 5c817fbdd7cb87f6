"""The live socket, ``/v1/listen``, in Deepgram's dialect: a thin adapter over
``live/session.LiveSession``.

The route admits the caller and parses the options; the session sends the results as text
frames (``SocketTransport``); ``LiveConnection`` is the input loop (audio and control
frames, or a pulled URL, and the wall clock while the client pauses its audio).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketState

from earmark.auth import Principal, key_from_request
from earmark.core.audio import PcmDecoder
from earmark.dialects.deepgram import (
    LiveOptions,
    error_message,
    parse_control,
    parse_live_options,
)
from earmark.errors import (
    BadMessage,
    EarmarkError,
    FrameTooLarge,
    IdleTimeout,
    SourceError,
    retry_headers,
)
from earmark.inference.tagger import Tag
from earmark.ingest.admission import (
    admit_caller,
    check_models,
    open_session,
    resolve_tags,
)
from earmark.ingest.pull_session import source_config
from earmark.ingest.services import LiveServices, live_services
from earmark.ingest.url_source import UrlSource
from earmark.live.runner import LiveRunner
from earmark.live.session import CLOSE_WAIT_S, LiveSession, TransportGone
from earmark.live.wall_clock import TICK_S, WallClockFollow
from earmark.outbound.url_safety import check_url, parse_networks

logger = logging.getLogger(__name__)
router = APIRouter()


def _deny(err: EarmarkError, request_id: str) -> JSONResponse:
    return JSONResponse({**err.to_dict(), "request_id": request_id}, status_code=err.http_status,
                        headers=retry_headers(err))


@router.websocket("/v1/listen")
async def listen(websocket: WebSocket) -> None:
    services = live_services(websocket.app)
    request_id = str(uuid.uuid4())
    subprotocols = list(websocket.scope.get("subprotocols") or [])
    key, subprotocol = key_from_request(websocket.headers, websocket.query_params, subprotocols)
    try:
        principal, options, tags = await _admit(websocket, services, key)
    except EarmarkError as err:
        await websocket.send_denial_response(_deny(err, request_id))
        return
    await websocket.accept(subprotocol=subprotocol)
    sessions = services.sessions
    refusal = sessions.over_capacity(options.channels if options.multichannel else 1)
    if refusal is not None:
        await _close_with_error(websocket, refusal)
        return
    session = open_session(services, options, SocketTransport(websocket),
                           request_id=request_id, owner=principal.owner, tags=tags,
                           decoder_for=lambda channel: _decoder(options, channel))
    sessions.add(session)
    try:
        await session.run(LiveConnection(websocket, services, session, options).consume)
    finally:
        sessions.discard(session)


async def _admit(websocket: WebSocket, services: LiveServices, key: str | None
                 ) -> tuple[Principal, LiveOptions, tuple[Tag, ...] | None]:
    """The caller, their options and the tags they score against, checked before the
    upgrade so that a refusal is an HTTP answer. Raises EarmarkError."""
    principal = admit_caller(services, key)
    options = parse_live_options(
        websocket.query_params.multi_items(), multilingual=services.engine.multilingual,
        defaults=services.settings.listen_default_pairs)
    check_models(services.engine, options)
    refusal = services.not_ready()
    if refusal is not None:
        raise refusal
    tags = await resolve_tags(services, principal.owner, options)
    if options.url is not None:
        await asyncio.to_thread(check_url, options.url,
                                parse_networks(services.settings.url_allow_networks))
        refusal = services.sessions.over_pull_limit()
        if refusal is not None:
            raise refusal
    return principal, options, tags


def _decoder(options: LiveOptions, channel: int | None) -> PcmDecoder:
    if options.url is not None:  # a pulled URL arrives as 16 kHz mono linear16
        return PcmDecoder(encoding="linear16", sample_rate=16000, channels=1)
    return PcmDecoder(encoding=options.encoding, sample_rate=options.sample_rate,
                      channels=options.channels, channel=channel)


async def _close_with_error(websocket: WebSocket, err: EarmarkError) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        await websocket.send_text(error_message(err).decode())
        await websocket.close(err.close_code, err.message[:120])
    except Exception:  # noqa: BLE001 - the client may already be gone
        pass


class SocketTransport:
    """The session's messages as WebSocket text frames."""

    def __init__(self, websocket: WebSocket) -> None:
        self.ws = websocket

    async def opened(self) -> None:
        return  # accepted before the session starts

    async def send(self, message: bytes) -> None:
        try:
            await self.ws.send_text(message.decode())
        except Exception as exc:
            raise TransportGone() from exc

    async def flushed(self) -> None:
        return  # a sent frame is with the socket already

    async def close(self, code: int, reason: str) -> None:
        if self.open:
            try:
                await self.ws.close(code, reason or None)
            except Exception:  # noqa: BLE001 - the client may already be gone
                pass

    @property
    def open(self) -> bool:
        return self.ws.application_state == WebSocketState.CONNECTED


class LiveConnection:
    """The socket's input: audio frames, control messages, a pulled URL, the wall clock."""

    def __init__(self, websocket: WebSocket, services: LiveServices, session: LiveSession,
                 options: LiveOptions) -> None:
        self.ws = websocket
        self.services = services
        self.settings = services.settings
        self.session = session
        self.options = options
        self.metrics = services.metrics
        self.puller: asyncio.Task[None] | None = None
        # A pulled URL is its own clock; a client's pauses in sending are followed.
        self.clock = WallClockFollow() if options.url is None else None

    async def consume(self) -> None:
        """Returns after CloseStream, the pulled source's end or a drain; raises for errors
        and disconnects."""
        self.puller = asyncio.create_task(self._pull_loop()) if self.options.url else None
        try:
            await self._receive_loop()
        finally:
            if self.puller is not None:
                self.puller.cancel()

    async def _pull_loop(self) -> None:
        """Feeds the pulled source into the session; returns when the source has ended."""
        assert self.options.url is not None
        source = UrlSource(self.options.url, source_config(
            self.services, dict(self.options.url_headers),
            rtsp_transport=self.options.rtsp_transport))
        runner = self.session.runner
        async for item in source.chunks():
            if isinstance(item, bytes):
                # A file is read faster than real time: wait while finals queue up, so neither
                # the session's audio buffer nor the scheduler queue grows without bound.
                await runner.wait_for_finals(2)
                await self.session.feed(item)
                continue
            self.session.put(item)
            if item.state == "failed":
                # What was heard before the failure is still the client's: finalize it first.
                assert isinstance(runner, LiveRunner)  # pulled sources are one channel
                await runner.close()
                await asyncio.wait({runner.closed, runner.failed},
                                   timeout=CLOSE_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
                raise SourceError(f"source failed: {item.reason}")
            if item.state == "ended":
                return

    async def _next_message(self) -> dict[str, Any]:
        receive = asyncio.ensure_future(self.ws.receive())
        stops = self.session.stops
        waits: set[asyncio.Future[Any]] = {receive, *stops}
        if self.puller is not None:
            waits.add(self.puller)
        loop = asyncio.get_running_loop()
        # A pulled source is the activity: the client need not send anything.
        idle_at = None if self.puller is not None else loop.time() + self.settings.idle_timeout_s
        while True:
            timeout = None if idle_at is None else max(0.0, idle_at - loop.time())
            if self.clock is not None and self.clock.active:
                timeout = TICK_S if timeout is None else min(timeout, TICK_S)
            done, _ = await asyncio.wait(waits, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if done or (idle_at is not None and loop.time() >= idle_at):
                break
            await self._follow_wall_clock(loop.time())
        if self.session.draining in done:
            receive.cancel()
            return {"type": "earmark.drain"}
        if self.puller is not None and self.puller in done:
            receive.cancel()
            self.puller.result()  # raises when the source failed
            return {"type": "earmark.source_ended"}
        if receive not in done:
            receive.cancel()
            for stop in stops & done:
                stop.result()  # raises what failed
            raise IdleTimeout(
                f"no audio or KeepAlive for {self.settings.idle_timeout_s:g} s; closing"
            )
        return receive.result()

    async def _receive_loop(self) -> None:
        while True:
            message = await self._next_message()
            if message["type"] == "websocket.disconnect":
                raise TransportGone()
            if message["type"] in ("earmark.source_ended", "earmark.drain"):
                return
            data = message.get("bytes")
            if data is not None:
                if not await self._audio(data):
                    return
                continue
            if await self._control(message.get("text") or ""):
                return

    async def _audio(self, data: bytes) -> bool:
        """One binary frame; False for Deepgram's legacy end of stream (an empty frame)."""
        if self.puller is not None:
            raise BadMessage("this session pulls a URL; it takes no audio frames")
        if len(data) > self.settings.max_frame_bytes:
            raise FrameTooLarge(
                f"binary frame of {len(data)} bytes is over the "
                f"{self.settings.max_frame_bytes}-byte limit"
            )
        if not data:
            return False
        samples, peak = await self.session.feed(data)
        if self.clock is not None:
            self.clock.on_audio(asyncio.get_running_loop().time(), samples, peak)
        self.metrics.audio_received.inc(
            len(data) / self.session.runner.decoder.frame_bytes / self.options.sample_rate
        )
        return True

    async def _control(self, text: str) -> bool:
        """Handles one text frame; True when the client asked to close the stream."""
        kind = parse_control(text)
        if kind == "Finalize":
            self.session.finalize()
        elif kind == "KeepAlive" and self.clock is not None:
            self.clock.on_keepalive()  # the client says it is not sending audio
            await self._follow_wall_clock(asyncio.get_running_loop().time())
        return kind == "CloseStream"

    async def _follow_wall_clock(self, now: float) -> None:
        """The client has stopped sending: the silence the wall clock says has passed."""
        owed = self.clock.owed(now) if self.clock is not None else 0
        if owed and self.clock is not None:
            self.clock.filled(owed)
            await self.session.feed_silence(owed)
