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

import orjson
from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketState

from earmark.api.auth import key_from_request, key_is_valid
from earmark.api.metrics import AppMetrics
from earmark.config import Settings
from earmark.core.audio import PcmDecoder
from earmark.core.events import Event, Transcript
from earmark.dialects.deepgram import (
    DeepgramEncoder,
    LiveOptions,
    error_message,
    parse_live_options,
    session_config,
)
from earmark.errors import (
    BadMessage,
    EarmarkError,
    FrameTooLarge,
    IdleTimeout,
    NotReady,
    Overloaded,
    Unauthorized,
)
from earmark.inference.engine import Engine
from earmark.live.outbox import Outbox
from earmark.live.runner import LiveRunner

logger = logging.getLogger(__name__)
router = APIRouter()

MAX_TEXT_BYTES = 64 * 1024
CLOSE_WAIT_S = 120.0  # upper bound for the last finals after CloseStream


class _ClientGone(Exception):
    pass


def _deny(err: EarmarkError, request_id: str) -> JSONResponse:
    return JSONResponse({**err.to_dict(), "request_id": request_id}, status_code=err.http_status)


@router.websocket("/v1/listen")
async def listen(websocket: WebSocket) -> None:
    app = websocket.app
    settings: Settings = app.state.settings
    engine: Engine = app.state.engine
    request_id = str(uuid.uuid4())
    subprotocols = list(websocket.scope.get("subprotocols") or [])
    key, subprotocol = key_from_request(websocket.headers, websocket.query_params, subprotocols)
    if settings.api_key_list and not key_is_valid(key, settings.api_key_list):
        await websocket.send_denial_response(
            _deny(Unauthorized("a valid API key is required"), request_id)
        )
        return
    try:
        options = parse_live_options(
            websocket.query_params.multi_items(), multilingual=engine.multilingual
        )
    except EarmarkError as err:
        await websocket.send_denial_response(_deny(err, request_id))
        return
    if not engine.ready:
        await websocket.send_denial_response(_deny(NotReady("models are loading"), request_id))
        return
    await websocket.accept(subprotocol=subprotocol)
    sessions: set[Any] = app.state.sessions
    capacity = engine.capacity()
    if len(sessions) >= capacity:
        app.state.metrics.sessions_refused.inc()
        await _close_with_error(
            websocket,
            Overloaded(f"the server is at its capacity of {capacity} live sessions; retry later"),
        )
        return
    connection = LiveConnection(websocket, settings, engine, options, request_id,
                                app.state.metrics)
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
    ) -> None:
        assert engine.vad_worker is not None and engine.scheduler is not None
        self.metrics = metrics
        self.ws = websocket
        self.settings = settings
        self.options = options
        self.log = logging.LoggerAdapter(logger, {"session": request_id})
        self.outbox = Outbox(settings.outbox_max_messages)
        self.encoder = DeepgramEncoder(
            request_id=request_id, model_name=engine.model_name, options=options
        )
        self.runner = LiveRunner(
            config=session_config(
                options,
                partial_interval_ms=settings.partial_interval_ms,
                max_utterance_s=settings.max_utterance_s,
                vad_threshold=settings.vad_threshold,
            ),
            decoder=PcmDecoder(
                encoding=options.encoding,
                sample_rate=options.sample_rate,
                channels=options.channels,
            ),
            vad=engine.vad_worker,
            scheduler=engine.scheduler,
            emit=self._emit,
            load_policy=engine.load_policy,
        )

    @property
    def lag_s(self) -> float:
        return self.runner.session.lag_samples / 16000

    @property
    def partials_shed(self) -> bool:
        return self.runner.partials_shed

    def _emit(self, event: Event) -> None:
        message = self.encoder.encode(event)
        if message is not None:
            interim = isinstance(event, Transcript) and not event.is_final
            self.outbox.put(message, interim=interim)

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop())
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
            self.runner.abandon()

    async def _send_loop(self) -> None:
        while True:
            message = await self.outbox.get()
            try:
                await self.ws.send_text(message.decode())
            except Exception as exc:
                raise _ClientGone() from exc
            self.outbox.sent()

    async def _next_message(self, sender: asyncio.Task[None]) -> dict[str, Any]:
        receive = asyncio.ensure_future(self.ws.receive())
        done, _ = await asyncio.wait(
            {receive, sender, self.runner.failed},
            timeout=self.settings.idle_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
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
            data = message.get("bytes")
            if data is not None:
                if len(data) > self.settings.max_frame_bytes:
                    raise FrameTooLarge(
                        f"binary frame of {len(data)} bytes is over the "
                        f"{self.settings.max_frame_bytes}-byte limit"
                    )
                if not data:  # Deepgram's legacy end-of-stream: an empty binary frame
                    return
                await self.runner.feed(data)
                self.metrics.audio_received.inc(
                    len(data) / self.runner.decoder.frame_bytes / self.options.sample_rate
                )
                continue
            if self._control(message.get("text") or ""):
                return

    def _control(self, text: str) -> bool:
        """Handles one text frame; True when the client asked to close the stream."""
        if len(text) > MAX_TEXT_BYTES:
            raise FrameTooLarge(f"text frame over {MAX_TEXT_BYTES} bytes")
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise BadMessage(
                "text frames must be JSON control messages; send audio as binary frames"
            ) from None
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "KeepAlive":
            return False
        if kind == "Finalize":
            self.runner.finalize()
            return False
        if kind == "CloseStream":
            return True
        raise BadMessage(
            f"unknown control message type {kind!r}; expected KeepAlive, Finalize or CloseStream"
        )

    async def _finish(self, sender: asyncio.Task[None]) -> None:
        """CloseStream: flush every final, send Metadata, close 1000."""
        await self.runner.close()
        done, _ = await asyncio.wait(
            {self.runner.closed, self.runner.failed, sender},
            timeout=CLOSE_WAIT_S,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for future in (sender, self.runner.failed):
            if future in done:
                future.result()
        duration = self.runner.closed.result() if self.runner.closed.done() else 0
        self.outbox.put(
            self.encoder.metadata(
                duration_samples=duration,
                sha256=self.runner.sha256.hexdigest(),
                channels=self.options.channels,
            )
        )
        await self._drain(sender)
        await self.ws.close(1000)

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
