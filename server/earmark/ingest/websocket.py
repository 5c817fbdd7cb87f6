"""The live socket, ``/v1/listen``, in Deepgram's dialect.

One connection: a receive loop (audio and control frames), a sender task (outbox -> socket),
and the LiveRunner's failure future; whichever fails first ends the connection, and the
``finally`` always cancels queued model work.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketState

from earmark.auth import key_from_request
from earmark.config import Settings
from earmark.core.audio import PcmDecoder
from earmark.core.events import Event, Transcript
from earmark.core.story import StorySoFar
from earmark.core.summary import pick_sentences, summary_of
from earmark.dialects.deepgram import (
    DeepgramEncoder,
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
    Overloaded,
    SourceError,
    retry_headers,
)
from earmark.inference.engine import Engine
from earmark.inference.tagger import Tag
from earmark.ingest.admission import (
    admit_caller,
    check_models,
    new_runner,
    not_ready,
    over_capacity,
    queue_event,
    resolve_tags,
)
from earmark.ingest.url_safety import check_url, parse_networks
from earmark.ingest.url_source import SourceConfig, UrlSource
from earmark.live.channels import ChannelGroup
from earmark.live.outbox import Outbox
from earmark.live.runner import LiveRunner
from earmark.live.wall_clock import TICK_S, WallClockFollow
from earmark.metrics import AppMetrics

logger = logging.getLogger(__name__)
router = APIRouter()

CLOSE_WAIT_S = 120.0  # upper bound for the last finals after CloseStream


class _ClientGone(Exception):
    pass


def _deny(err: EarmarkError, request_id: str) -> JSONResponse:
    return JSONResponse({**err.to_dict(), "request_id": request_id}, status_code=err.http_status,
                        headers=retry_headers(err))


@router.websocket("/v1/listen")
async def listen(websocket: WebSocket) -> None:
    app = websocket.app
    settings: Settings = app.state.settings
    engine: Engine = app.state.engine
    request_id = str(uuid.uuid4())
    subprotocols = list(websocket.scope.get("subprotocols") or [])
    key, subprotocol = key_from_request(websocket.headers, websocket.query_params, subprotocols)
    try:
        principal = admit_caller(app, key)
    except EarmarkError as err:
        await websocket.send_denial_response(_deny(err, request_id))
        return
    try:
        options = parse_live_options(
            websocket.query_params.multi_items(), multilingual=engine.multilingual,
            defaults=app.state.settings.listen_default_pairs)
    except EarmarkError as err:
        await websocket.send_denial_response(_deny(err, request_id))
        return
    try:
        check_models(app, options)
    except EarmarkError as err:
        await websocket.send_denial_response(_deny(err, request_id))
        return
    refusal = not_ready(app)
    if refusal is not None:
        await websocket.send_denial_response(_deny(refusal, request_id))
        return
    try:
        tags = await resolve_tags(app, principal.owner, options)
    except EarmarkError as err:
        await websocket.send_denial_response(_deny(err, request_id))
        return
    if options.url is not None:
        try:
            await asyncio.to_thread(check_url, options.url,
                                    parse_networks(settings.url_allow_networks))
        except EarmarkError as err:
            await websocket.send_denial_response(_deny(err, request_id))
            return
        pulls = sum(1 for c in app.state.sessions if c.options.url is not None)
        if pulls >= settings.max_url_pulls:
            await websocket.send_denial_response(_deny(
                Overloaded(f"at the limit of {settings.max_url_pulls} URL pulls"), request_id))
            return
    await websocket.accept(subprotocol=subprotocol)
    sessions: set[Any] = app.state.sessions
    refusal = over_capacity(app, options.channels if options.multichannel else 1)
    if refusal is not None:
        await _close_with_error(websocket, refusal)
        return
    connection = LiveConnection(websocket, settings, engine, options, request_id,
                                app.state.metrics, tags, owner=principal.owner)
    sessions.add(connection)
    try:
        await connection.run()
    finally:
        sessions.discard(connection)


async def _close_with_error(websocket: WebSocket, err: EarmarkError) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        await websocket.send_text(error_message(err).decode())
        await websocket.close(err.close_code, err.message[:120])
    except Exception:  # noqa: BLE001 - the client may already be gone
        pass


class LiveConnection:
    def __init__(
        self,
        websocket: WebSocket,
        settings: Settings,
        engine: Engine,
        options: LiveOptions,
        request_id: str,
        metrics: AppMetrics,
        tags: tuple[Tag, ...] | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self.owner = owner  # the API key's owner (per-key session limits)
        self.metrics = metrics
        self.ws = websocket
        self.settings = settings
        self.options = options
        self.log = logging.LoggerAdapter(logger, {"session": request_id})
        self.outbox = Outbox(settings.outbox_max_messages)
        self.puller: asyncio.Task[None] | None = None
        # Set at server shutdown: finish like CloseStream, then close 1012.
        self.draining: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.finished = asyncio.Event()
        self.encoder = DeepgramEncoder(
            request_id=request_id, model_name=engine.model_name, options=options
        )
        self.story = StorySoFar() if options.summarize else None
        # A pulled URL is its own clock; a client's pauses in sending are followed.
        self.clock = WallClockFollow() if options.url is None else None
        self.engine = engine
        self.runner: LiveRunner | ChannelGroup
        self.streams = 1
        if options.multichannel:
            self.streams = options.channels  # each channel is a stream for capacity
            self.runner = ChannelGroup([self._channel_runner(engine, tags, i)
                                        for i in range(options.channels)])
            return
        # A pulled URL arrives as 16 kHz mono linear16 whatever the query said.
        decoder = (
            PcmDecoder(encoding="linear16", sample_rate=16000, channels=1)
            if options.url is not None
            else PcmDecoder(encoding=options.encoding, sample_rate=options.sample_rate,
                            channels=options.channels)
        )
        self.runner = new_runner(settings, engine, options, decoder, self._emit, tags)

    def _channel_runner(self, engine: Engine, tags: tuple[Tag, ...] | None,
                        channel: int) -> LiveRunner:
        encoder = DeepgramEncoder(request_id=self.encoder.request_id,
                                  model_name=engine.model_name, options=self.options,
                                  channel=channel, channels=self.options.channels)
        decoder = PcmDecoder(encoding=self.options.encoding, sample_rate=self.options.sample_rate,
                             channels=self.options.channels, channel=channel)
        def emit(event: Event) -> None:
            self._record(event)
            queue_event(encoder, self.outbox, event)

        return new_runner(self.settings, engine, self.options, decoder, emit, tags)

    @property
    def lag_s(self) -> float:
        return self.runner.lag_samples / 16000

    @property
    def partials_shed(self) -> bool:
        return self.runner.partials_shed

    def _emit(self, event: Event) -> None:
        self._record(event)
        queue_event(self.encoder, self.outbox, event)

    def _record(self, event: Event) -> None:
        """Finals (as sent: redacted words stay redacted) for the closing Summary."""
        if self.story is not None and isinstance(event, Transcript) and event.is_final:
            self.story.add(event.words)

    def drain(self) -> None:
        """Server shutdown: stop taking audio, flush every final, send Metadata, close 1012."""
        if not self.draining.done():
            self.draining.set_result(None)

    def revoke(self, err: EarmarkError) -> None:
        """The key was revoked: the results so far, then ``err`` and its close code."""
        if not self.runner.failed.done():
            self.runner.failed.set_exception(err)

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.finished.set()

    async def _run(self) -> None:
        sender = asyncio.create_task(self._send_loop())
        self.puller = asyncio.create_task(self._pull_loop()) if self.options.url else None
        try:
            await self._receive_loop(sender)
            await self._finish(sender)
        except _ClientGone:
            self.log.info("client went away")
        except EarmarkError as err:
            self.log.info("closing with %s: %s", err.code, err.message)
            await self._flush_then_error(sender, err)
        except Exception:
            self.log.exception("live session failed")
            await _close_with_error(self.ws, EarmarkError("internal server error"))
        finally:
            sender.cancel()
            if self.puller is not None:
                self.puller.cancel()
            self.runner.abandon()

    async def _send_loop(self) -> None:
        while True:
            message = await self.outbox.get()
            try:
                await self.ws.send_text(message.decode())
            except Exception as exc:
                raise _ClientGone() from exc
            self.outbox.sent()

    async def _pull_loop(self) -> None:
        """Feeds the pulled source into the runner; returns when the source has ended."""
        assert self.options.url is not None
        source = UrlSource(self.options.url, SourceConfig(
            headers=dict(self.options.url_headers),
            reconnect_budget_s=self.settings.url_reconnect_budget_s,
            proxy_url=self.ws.app.state.egress.url, egress=self.ws.app.state.egress,
            allow_networks=tuple(parse_networks(self.settings.url_allow_networks)),
            rtsp_transport=self.options.rtsp_transport,
        ))
        async for item in source.chunks():
            if isinstance(item, bytes):
                # A file is read faster than real time: wait while finals queue up, so neither
                # the session's audio buffer nor the scheduler queue grows without bound.
                await self.runner.wait_for_finals(2)
                await self.runner.feed(item)
                continue
            self._emit(item)
            if item.state == "failed":
                # What was heard before the failure is still the client's: finalize it first.
                assert isinstance(self.runner, LiveRunner)  # pulled sources are one channel
                await self.runner.close()
                await asyncio.wait({self.runner.closed, self.runner.failed},
                                   timeout=CLOSE_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
                raise SourceError(f"source failed: {item.reason}")
            if item.state == "ended":
                return

    async def _next_message(self, sender: asyncio.Task[None]) -> dict[str, Any]:
        receive = asyncio.ensure_future(self.ws.receive())
        waits: set[asyncio.Future[Any]] = {receive, sender, self.runner.failed, self.draining}
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
        if self.draining in done:
            receive.cancel()
            return {"type": "earmark.drain"}
        if self.puller is not None and self.puller in done:
            receive.cancel()
            self.puller.result()  # raises when the source failed
            return {"type": "earmark.source_ended"}
        if receive not in done:
            receive.cancel()
            if sender in done:
                sender.result()
            if self.runner.failed in done:
                self.runner.failed.result()
            raise IdleTimeout(
                f"no audio or KeepAlive for {self.settings.idle_timeout_s:g} s; closing"
            )
        return receive.result()

    async def _receive_loop(self, sender: asyncio.Task[None]) -> None:
        """Returns after CloseStream; raises for errors and disconnects."""
        while True:
            message = await self._next_message(sender)
            if message["type"] == "websocket.disconnect":
                raise _ClientGone()
            if message["type"] in ("earmark.source_ended", "earmark.drain"):
                return
            data = message.get("bytes")
            if data is not None and self.puller is not None:
                raise BadMessage("this session pulls a URL; it takes no audio frames")
            if data is not None:
                if len(data) > self.settings.max_frame_bytes:
                    raise FrameTooLarge(
                        f"binary frame of {len(data)} bytes is over the "
                        f"{self.settings.max_frame_bytes}-byte limit"
                    )
                if not data:  # Deepgram's legacy end-of-stream: an empty binary frame
                    return
                samples, peak = await self.runner.feed(data)
                if self.clock is not None:
                    self.clock.on_audio(asyncio.get_running_loop().time(), samples, peak)
                self.metrics.audio_received.inc(
                    len(data) / self.runner.decoder.frame_bytes / self.options.sample_rate
                )
                continue
            if await self._control(message.get("text") or ""):
                return

    async def _control(self, text: str) -> bool:
        """Handles one text frame; True when the client asked to close the stream."""
        kind = parse_control(text)
        if kind == "Finalize":
            self.runner.finalize()
        elif kind == "KeepAlive" and self.clock is not None:
            self.clock.on_keepalive()  # the client says it is not sending audio
            await self._follow_wall_clock(asyncio.get_running_loop().time())
        return kind == "CloseStream"

    async def _follow_wall_clock(self, now: float) -> None:
        """The client has stopped sending: the silence the wall clock says has passed."""
        owed = self.clock.owed(now) if self.clock is not None else 0
        if owed and self.clock is not None:
            self.clock.filled(owed)
            await self.runner.feed_silence(owed)

    async def _finish(self, sender: asyncio.Task[None]) -> None:
        """CloseStream: flush every final, send Metadata, close 1000."""
        duration = await self.runner.finish(sender, CLOSE_WAIT_S)
        if self.story is not None:
            self.outbox.put(await self._summary())
        self.outbox.put(
            self.encoder.metadata(
                duration_samples=duration,
                sha256=self.runner.sha256.hexdigest(),
                channels=self.options.channels,
            )
        )
        await self._drain(sender)
        if self.draining.done():
            await self.ws.close(1012, "server shutting down; results so far were sent")
        else:
            await self.ws.close(1000)

    async def _summary(self) -> bytes:
        """An extractive summary of the whole stream and its most representative sentence."""
        assert self.story is not None
        found = self.story.sentences()
        texts = [m.text for m in found]
        if not texts:
            return self.encoder.summary("", "")
        vectors = await asyncio.wrap_future(self.engine.tag_worker.embed(texts))
        best = pick_sentences(vectors, 1, min_words=[len(t.split()) for t in texts])[0]
        return self.encoder.summary(summary_of(texts, vectors), texts[best])

    async def _drain(self, sender: asyncio.Task[None]) -> None:
        drained = asyncio.ensure_future(self.outbox.drained())
        done, _ = await asyncio.wait({drained, sender}, timeout=10.0,
                                     return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        if sender in done:
            sender.result()

    async def _flush_then_error(self, sender: asyncio.Task[None], err: EarmarkError) -> None:
        # Results already decided are still the client's: send them before the Error.
        if not sender.done():
            try:
                await self._drain(sender)
            except Exception:  # noqa: BLE001
                return
        await _close_with_error(self.ws, err)


async def drain_sessions(app: Any, timeout_s: float) -> int:
    """Asks every live session to finish (finals, Metadata, close 1012) and waits for them, up
    to ``timeout_s``. Returns how many were still running at the deadline."""
    app.state.draining = True
    connections = list(app.state.sessions)
    for connection in connections:
        connection.drain()
    if not connections:
        return 0
    waits = [asyncio.ensure_future(c.finished.wait()) for c in connections]
    _, pending = await asyncio.wait(waits, timeout=timeout_s)
    for task in pending:
        task.cancel()
    return len(pending)
