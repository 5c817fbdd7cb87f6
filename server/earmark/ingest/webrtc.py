"""WebRTC ingest: ``POST /v1/webrtc/offer``.

The client sends an SDP offer with one audio track and a data channel labelled ``earmark``;
the answer comes back in the response (aiortc gathers every candidate first, so no trickle
ICE is needed). Audio frames (usually Opus at 48 kHz) are resampled by one resampler per track
into the same live pipeline as ``/v1/listen``; results go back on the data channel as the same
JSON messages, and the channel takes the same control messages (KeepAlive, Finalize,
CloseStream).

Peers belong to the app's ``WebRtcPeers``: each peer has one task, and whatever way it ends
(track ended, CloseStream, ICE failure, idle, an error, shutdown) the task closes the peer
connection and leaves the registry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from fractions import Fraction
from typing import Any

import av
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from earmark.auth import key_from_request
from earmark.config import Settings
from earmark.core.audio import PcmDecoder
from earmark.core.events import Event
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
    IdleTimeout,
    InvalidParameter,
    Overloaded,
    retry_headers,
)
from earmark.inference.engine import Engine
from earmark.inference.tagger import Tag
from earmark.ingest.admission import (
    admit_caller,
    new_runner,
    not_ready,
    over_capacity,
    queue_event,
    resolve_tags,
)
from earmark.live.outbox import Outbox
from earmark.live.wall_clock import QUIET_PEAK as WALL_QUIET_PEAK
from earmark.live.wall_clock import STALL_LOUD_S, STALL_QUIET_S, TICK_S

logger = logging.getLogger(__name__)
router = APIRouter()

CHANNEL_LABEL = "earmark"
MAX_SDP_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 20.0  # offer answered -> first audio frame (ICE + DTLS)
CLOSE_WAIT_S = 120.0
MAX_GAP_S = 5.0  # lost packets are filled with silence, up to this much at once
# Packets stop during Opus DTX, a muted or paused track, or after a file ends; the session's
# clock still follows the wall clock, so endpoints and finals come. A gap this long starts it
# after quiet audio (DTX, or a track that stopped after speech); after loud audio it must be
# longer: a busy sender or event loop also delivers frames late, in bursts, and silence
# put between them lands inside words (0.2 s did that with four peers on 2 cores). The live
# socket follows the same stalls (live/wall_clock.py).
STALL_S = STALL_QUIET_S
QUIET_PEAK = round(WALL_QUIET_PEAK * 32768)  # int16 peak of a quiet frame (-30 dBFS)
STALL_TICK_S = TICK_S
CHANNEL_HIGH_WATER = 1 << 20  # bytes buffered on the data channel before the sender waits
DRAIN_WAIT_S = 2.0  # for the data channel's buffer to empty before the peer is closed
RATE = 16000


class _PeerGone(Exception):
    pass


def _ice_servers(settings: Settings) -> list[Any]:
    from aiortc import RTCIceServer

    servers = []
    for url in (u.strip() for u in settings.webrtc_ice_servers.split(",")):
        if not url:
            continue
        turn = url.startswith(("turn:", "turns:"))
        servers.append(RTCIceServer(
            urls=url,
            username=(settings.webrtc_turn_username or None) if turn else None,
            credential=(settings.webrtc_turn_password or None) if turn else None,
        ))
    return servers


class WebRtcPeers:
    """The app's peer connections: a bounded registry, one task per peer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.peers: set[PeerSession] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, peer: PeerSession) -> None:
        self.peers.add(peer)
        task = asyncio.create_task(peer.run(), name=f"webrtc-{peer.request_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close_all(self) -> None:
        """Lifespan shutdown: whatever is still running is cancelled and closed."""
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def _error(err: EarmarkError, request_id: str) -> JSONResponse:
    return JSONResponse({**err.to_dict(), "request_id": request_id},
                        status_code=err.http_status, headers=retry_headers(err))


def _parse_offer(body: Any) -> str:
    if not isinstance(body, dict) or body.get("type") != "offer":
        raise InvalidParameter('the body must be {"type": "offer", "sdp": "..."}', param="type")
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise InvalidParameter("sdp must be an SDP offer (starting with v=0)", param="sdp")
    if len(sdp) > MAX_SDP_BYTES:
        raise InvalidParameter(f"sdp is over {MAX_SDP_BYTES} bytes", param="sdp")
    media = [line.split()[0][2:] for line in sdp.splitlines() if line.startswith("m=")]
    if media.count("audio") != 1:
        raise InvalidParameter("the offer must carry exactly one audio track", param="sdp")
    if "video" in media:
        raise InvalidParameter("video is not accepted; offer audio only", param="sdp")
    if "application" not in media:
        raise InvalidParameter(
            f"the offer has no data channel; open one labelled {CHANNEL_LABEL!r} before "
            "creating the offer, results arrive on it", param="sdp")
    return sdp


@router.post("/v1/webrtc/offer")
async def offer(request: Request) -> JSONResponse:
    app = request.app
    settings: Settings = app.state.settings
    engine: Engine = app.state.engine
    peers: WebRtcPeers = app.state.webrtc
    request_id = str(uuid.uuid4())
    key, _ = key_from_request(request.headers, request.query_params, [])
    try:
        principal = admit_caller(app, key)
        options = parse_live_options(request.query_params.multi_items(),
                                     multilingual=engine.multilingual,
                                     defaults=app.state.settings.listen_default_pairs)
        if options.url is not None:
            raise InvalidParameter("url is for /v1/listen; a WebRTC session sends its own audio",
                                   param="url")
        try:
            body = await request.json()
        except ValueError:
            raise InvalidParameter("the body must be JSON", param="sdp") from None
        sdp = _parse_offer(body)
    except EarmarkError as err:
        return _error(err, request_id)
    try:
        tags = await resolve_tags(app, principal.owner, options)
    except EarmarkError as err:
        return _error(err, request_id)
    refusal = not_ready(app) or over_capacity(app)
    if refusal is None and len(peers.peers) >= peers.limit:
        refusal = Overloaded(f"at the limit of {peers.limit} WebRTC peers; retry later")
    if refusal is not None:
        return _error(refusal, request_id)

    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection(RTCConfiguration(iceServers=_ice_servers(settings)))
    peer = PeerSession(pc, settings, engine, options, request_id, app, tags,
                       owner=principal.owner)
    peers.peers.add(peer)
    app.state.sessions.add(peer)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # noqa: BLE001 - aiortc raises plain exceptions for bad SDP
        peers.peers.discard(peer)
        app.state.sessions.discard(peer)
        await pc.close()
        # aiortc's own text names its internals; the client gets what it can act on.
        logger.info("WebRTC offer %s refused: %s: %s", request_id, type(exc).__name__, exc)
        return _error(InvalidParameter("the offer could not be used: it is not a valid SDP "
                                       "offer with an audio track (RFC 8866, RFC 8829)",
                                       param="sdp"), request_id)
    if peer.track is None:
        peers.peers.discard(peer)
        app.state.sessions.discard(peer)
        await pc.close()
        return _error(InvalidParameter("the offer's audio track is not sending", param="sdp"),
                      request_id)
    peer.codec_delay_samples = codec_delay_samples(pc.localDescription.sdp)
    peers.start(peer)
    return JSONResponse({"type": "answer", "sdp": pc.localDescription.sdp,
                         "request_id": request_id})


# libopus delays its output by its encoder's look-ahead: 312 samples at 48 kHz (6.5 ms).
# Ogg carries it as "pre-skip" and decoders drop it; RTP does not, so the track's audio runs
# 6.5 ms late. Whisper tiny is sensitive to that sub-frame shift: the same sentence, 104
# samples later, read "the quick round fark stumps" for "the quick brown fox jumps" (issue
# 18). The first 104 samples (at 16 kHz) of an Opus track are dropped, so a WebRTC session
# hears what the socket would: same audio, same times.
OPUS_DELAY_SAMPLES = 312 * RATE // 48000


def codec_delay_samples(answer_sdp: str) -> int:
    """16 kHz samples of codec delay for the audio codec the answer chose (its first)."""
    lines = answer_sdp.splitlines()
    media = next((line.split()[3:] for line in lines if line.startswith("m=audio ")), [])
    if not media:
        return 0
    chosen = f"a=rtpmap:{media[0]} "
    codec = next((line[len(chosen):] for line in lines if line.startswith(chosen)), "")
    return OPUS_DELAY_SAMPLES if codec.lower().startswith("opus/") else 0


class PeerSession:
    """One WebRTC client: track -> resampler -> LiveRunner; events -> data channel."""

    def __init__(self, pc: Any, settings: Settings, engine: Engine, options: LiveOptions,
                 request_id: str, app: Any, tags: tuple[Tag, ...] | None = None, *,
                 owner: str | None = None) -> None:
        self.owner = owner  # the API key's owner (per-key session limits)
        self.pc = pc
        self.settings = settings
        # Opus-coded speech makes greedy interim decodes steadily wrong where the final's
        # beam search is right ("round-fark" for "brown fox" through aiortc and Chromium),
        # and two wrong interims agree: WebRTC finals come at pauses and endpoints.
        options = dataclasses.replace(options, agreement=False)
        self.options = options
        self.request_id = request_id
        self.app = app
        self.log = logging.LoggerAdapter(logger, {"session": request_id})
        loop = asyncio.get_running_loop()
        self.track: Any = None
        self.channel: Any = None
        self.channel_open = asyncio.Event()
        self.channel_writable = asyncio.Event()
        self.channel_writable.set()
        self.gone: asyncio.Future[None] = loop.create_future()  # ICE/DTLS failed or closed
        self.close_requested: asyncio.Future[None] = loop.create_future()  # CloseStream
        self.draining: asyncio.Future[None] = loop.create_future()  # server shutdown
        self.finished = asyncio.Event()
        self.outbox = Outbox(settings.outbox_max_messages)
        self.encoder = DeepgramEncoder(request_id=request_id, model_name=engine.model_name,
                                       options=options)
        self.runner = new_runner(settings, engine, options,
                                 PcmDecoder(encoding="linear16", sample_rate=RATE, channels=1),
                                 self._emit, tags)
        # One resampler per track: its filter state must carry across frames.
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self.next_pts: int | None = None
        self.last_frame_at: float | None = None  # loop time of the last frame received
        self.stall_filled = 0  # samples of silence fed since then, for the wall clock
        self.last_frame_quiet = True
        self.codec_delay_samples = 0  # set from the answer: dropped from the track's start
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)

    # --- what the metrics and shutdown read (same as a socket session) ---
    @property
    def lag_s(self) -> float:
        return self.runner.session.lag_samples / RATE

    @property
    def partials_shed(self) -> bool:
        return self.runner.partials_shed

    def drain(self) -> None:
        if not self.draining.done():
            self.draining.set_result(None)

    def revoke(self, err: EarmarkError) -> None:
        """The key was revoked: the results so far, then ``err`` on the data channel."""
        self._fail(err)

    # --- aiortc callbacks ---
    def _on_track(self, track: Any) -> None:
        if track.kind == "audio" and self.track is None:
            self.track = track

    def _on_datachannel(self, channel: Any) -> None:
        if channel.label != CHANNEL_LABEL or self.channel is not None:
            return
        self.channel = channel
        channel.bufferedAmountLowThreshold = CHANNEL_HIGH_WATER // 4
        channel.on("open", self.channel_open.set)
        channel.on("message", self._on_message)
        channel.on("bufferedamountlow", self.channel_writable.set)
        channel.on("close", lambda: self._set(self.gone))
        channel.on("close", self.channel_writable.set)  # a waiting sender or drain wakes
        if channel.readyState == "open":
            self.channel_open.set()

    def _on_message(self, message: Any) -> None:
        try:
            if not isinstance(message, str):
                raise BadMessage("the data channel takes JSON control messages, not binary; "
                                 "audio travels on the track")
            kind = parse_control(message)
        except EarmarkError as err:
            self._fail(err)
            return
        if kind == "Finalize":
            self.runner.finalize()
        elif kind == "CloseStream":
            self._set(self.close_requested)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._set(self.gone)

    @staticmethod
    def _set(future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_result(None)

    def _fail(self, err: BaseException) -> None:
        if not self.runner.failed.done():
            self.runner.failed.set_exception(err)

    def _emit(self, event: Event) -> None:
        queue_event(self.encoder, self.outbox, event)

    # --- the peer's task ---
    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop())
        try:
            await self._consume()
            await self._finish(sender)
        except _PeerGone:
            self.log.info("peer went away")
        except EarmarkError as err:
            self.log.info("closing with %s: %s", err.code, err.message)
            await self._flush_then_error(sender, err)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("WebRTC session failed")
            await self._flush_then_error(sender, EarmarkError("internal server error"))
        finally:
            sender.cancel()
            self.runner.abandon()
            try:
                await self.pc.close()
            finally:
                self.app.state.webrtc.peers.discard(self)
                self.app.state.sessions.discard(self)
                self.finished.set()

    async def _consume(self) -> None:
        """Feeds audio until the track ends, CloseStream or shutdown; raises on failures."""
        loop = asyncio.get_running_loop()
        timeout = CONNECT_TIMEOUT_S
        stops = {self.gone, self.close_requested, self.draining, self.runner.failed}
        while True:
            recv = asyncio.ensure_future(self.track.recv())
            waited_since = loop.time() if self.last_frame_at is None else self.last_frame_at
            while True:
                tick = timeout if self.last_frame_at is None else STALL_TICK_S
                done, _ = await asyncio.wait({recv, *stops}, timeout=tick,
                                             return_when=asyncio.FIRST_COMPLETED)
                if done or loop.time() - waited_since >= timeout:
                    break
                await self._follow_wall_clock(loop.time())
            if recv not in done:
                recv.cancel()
                if self.runner.failed in done:
                    self.runner.failed.result()
                if self.gone in done:
                    raise _PeerGone()
                if done:  # CloseStream or shutdown
                    return
                raise IdleTimeout(f"no audio on the WebRTC track for {timeout:g} s; closing")
            try:
                frame = recv.result()
            except Exception:  # aiortc's MediaStreamError: the remote track ended
                if self.gone.done():
                    raise _PeerGone() from None
                return
            timeout = self.settings.idle_timeout_s
            await self._feed(frame)
            self.last_frame_at = loop.time()

    async def _follow_wall_clock(self, now: float) -> None:
        """No packets for STALL_S: feeds the silence the wall clock says has passed."""
        stall = STALL_S if self.last_frame_quiet else STALL_LOUD_S
        if self.last_frame_at is None or now - self.last_frame_at < stall:
            return
        owed = int((now - self.last_frame_at) * RATE) - self.stall_filled
        if owed >= RATE // 100:
            self.stall_filled += owed
            await self.runner.feed(bytes(2 * owed))

    async def _feed(self, frame: Any) -> None:
        # Lost packets leave a gap in the timestamps: fill it with silence, so that result
        # times stay session audio time.
        if frame.pts is not None and frame.time_base is not None:
            if self.next_pts is not None and frame.pts > self.next_pts:
                gap_s = min(MAX_GAP_S, float((frame.pts - self.next_pts) * frame.time_base))
                gap = int(gap_s * RATE) - self.stall_filled  # the wall clock filled some
                if gap >= RATE // 100:
                    await self.runner.feed(bytes(2 * gap))
            self.next_pts = frame.pts + int(frame.samples / frame.sample_rate
                                            / Fraction(frame.time_base))
        self.stall_filled = 0
        for out in self.resampler.resample(frame):
            pcm = out.to_ndarray().astype(np.int16, copy=False).reshape(-1)
            if self.codec_delay_samples:
                dropped = min(self.codec_delay_samples, len(pcm))
                pcm = pcm[dropped:]
                self.codec_delay_samples -= dropped
            if len(pcm):
                self.last_frame_quiet = int(np.abs(pcm.astype(np.int32)).max()) < QUIET_PEAK
                await self.runner.feed(pcm.tobytes())
        self.app.state.metrics.audio_received.inc(frame.samples / frame.sample_rate)

    async def _send_loop(self) -> None:
        await self.channel_open.wait()
        while True:
            message = await self.outbox.get()
            channel = self.channel
            if channel is None or channel.readyState != "open":
                raise _PeerGone()
            while channel.readyState == "open" and channel.bufferedAmount > CHANNEL_HIGH_WATER:
                self.channel_writable.clear()
                await self.channel_writable.wait()
            if channel.readyState != "open":
                raise _PeerGone()
            channel.send(message.decode())
            self.outbox.sent()

    async def _finish(self, sender: asyncio.Task[None]) -> None:
        """Track ended, CloseStream or shutdown: every final, then Metadata, then close."""
        duration = await self.runner.finish(sender, CLOSE_WAIT_S)
        self.outbox.put(self.encoder.metadata(duration_samples=duration,
                                              sha256=self.runner.sha256.hexdigest(),
                                              channels=1))
        await self._drain(sender)

    async def _drain(self, sender: asyncio.Task[None]) -> None:
        if not self.channel_open.is_set():
            return  # nobody to tell
        drained = asyncio.ensure_future(self.outbox.drained())
        done, _ = await asyncio.wait({drained, sender, self.gone}, timeout=10.0,
                                     return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        if sender in done:
            sender.result()
        # What was handed to the channel still has to leave before the peer is closed:
        # with a threshold of 0, aiortc's "bufferedamountlow" fires when the buffer empties.
        channel = self.channel
        if channel is None or channel.readyState != "open" or not channel.bufferedAmount:
            return
        channel.bufferedAmountLowThreshold = 0
        try:
            await asyncio.wait_for(self._emptied(channel), DRAIN_WAIT_S)
        except TimeoutError:
            logger.debug("data channel still had %d bytes buffered", channel.bufferedAmount)

    async def _emptied(self, channel: Any) -> None:
        while channel.readyState == "open" and channel.bufferedAmount:
            self.channel_writable.clear()
            await self.channel_writable.wait()

    async def _flush_then_error(self, sender: asyncio.Task[None], err: EarmarkError) -> None:
        if sender.done() or self.channel is None or self.channel.readyState != "open":
            return
        try:
            await self._drain(sender)
            self.channel.send(error_message(err).decode())
            await self._drain(sender)
        except Exception:  # noqa: BLE001 - the peer may already be gone
            pass
