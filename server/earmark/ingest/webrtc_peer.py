"""One WebRTC peer as a live session: the track's frames (resampled, codec delay dropped,
lost packets and stalls filled with silence) into ``LiveSession``, its messages out on the
data channel (``ChannelTransport``), control messages in from it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from fractions import Fraction
from typing import Any

import av
import numpy as np

from earmark.core.audio import PcmDecoder
from earmark.dialects.deepgram import LiveOptions, parse_control
from earmark.errors import BadMessage, EarmarkError, IdleTimeout
from earmark.inference.tagger import Tag
from earmark.ingest.admission import open_session
from earmark.ingest.services import LiveServices
from earmark.live.session import LiveSession, TransportGone
from earmark.live.wall_clock import QUIET_PEAK as WALL_QUIET_PEAK
from earmark.live.wall_clock import STALL_LOUD_S, STALL_QUIET_S, TICK_S

logger = logging.getLogger(__name__)

CHANNEL_LABEL = "earmark"
CONNECT_TIMEOUT_S = 20.0  # offer answered -> first audio frame (ICE + DTLS)
MAX_GAP_S = 5.0  # lost packets are filled with silence, up to this much at once
# Packets stop during Opus DTX, a muted or paused track, or after a file ends; the session's
# clock still follows the wall clock, so endpoints and finals come. A gap this long starts it
# after quiet audio (DTX, or a track that stopped after speech); after loud audio it must be
# longer: a busy sender or event loop also delivers frames late, in bursts, and silence
# put between them lands inside words (0.2 s did that with four peers on 2 cores; with 16
# peers on 2 cores, twice what they can decode, the longest gap after a loud frame was
# 0.36 s). The live socket follows the same stalls (live/wall_clock.py).
STALL_S = STALL_QUIET_S
QUIET_PEAK = round(WALL_QUIET_PEAK * 32768)  # int16 peak of a quiet frame (-30 dBFS)
STALL_TICK_S = TICK_S
CHANNEL_HIGH_WATER = 1 << 20  # bytes buffered on the data channel before the sender waits
DRAIN_WAIT_S = 2.0  # for the data channel's buffer to empty before the peer is closed
RATE = 16000


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


class ChannelTransport:
    """The session's messages on the peer's data channel (labelled ``earmark``)."""

    def __init__(self) -> None:
        self.channel: Any = None
        self.channel_open = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()

    def attach(self, channel: Any, on_close: Any) -> None:
        self.channel = channel
        channel.bufferedAmountLowThreshold = CHANNEL_HIGH_WATER // 4
        channel.on("open", self.channel_open.set)
        channel.on("bufferedamountlow", self.writable.set)
        channel.on("close", on_close)
        channel.on("close", self.writable.set)  # a waiting sender or drain wakes
        if channel.readyState == "open":
            self.channel_open.set()

    @property
    def open(self) -> bool:
        return self.channel is not None and self.channel.readyState == "open"

    async def opened(self) -> None:
        await self.channel_open.wait()

    async def send(self, message: bytes) -> None:
        channel = self.channel
        while self.open and channel.bufferedAmount > CHANNEL_HIGH_WATER:
            self.writable.clear()
            await self.writable.wait()
        if not self.open:
            raise TransportGone()
        channel.send(message.decode())

    async def flushed(self) -> None:
        """What was handed to the channel still has to leave before the peer is closed:
        with a threshold of 0, aiortc's "bufferedamountlow" fires when the buffer empties."""
        channel = self.channel
        if not self.open or not channel.bufferedAmount:
            return
        channel.bufferedAmountLowThreshold = 0
        try:
            await asyncio.wait_for(self._emptied(), DRAIN_WAIT_S)
        except TimeoutError:
            logger.debug("data channel still had %d bytes buffered", channel.bufferedAmount)

    async def _emptied(self) -> None:
        while self.open and self.channel.bufferedAmount:
            self.writable.clear()
            await self.writable.wait()

    async def close(self, code: int, reason: str) -> None:
        return  # the peer connection closes when its task ends (PeerSession.run)


class PeerSession:
    """One WebRTC client: track -> resampler -> LiveSession; its messages -> data channel."""

    def __init__(self, pc: Any, services: LiveServices, options: LiveOptions, request_id: str,
                 tags: tuple[Tag, ...] | None = None, *, owner: str | None = None) -> None:
        self.pc = pc
        self.services = services
        self.settings = services.settings
        # Opus-coded speech makes greedy interim decodes steadily wrong where the final's
        # beam search is right ("round-fark" for "brown fox" through aiortc and Chromium),
        # and two wrong interims agree: WebRTC finals come at pauses and endpoints.
        options = dataclasses.replace(options, agreement=False, channels=1)
        self.options = options
        self.request_id = request_id
        self.log = logging.LoggerAdapter(logger, {"session": request_id})
        loop = asyncio.get_running_loop()
        self.track: Any = None
        self.transport = ChannelTransport()
        self.gone: asyncio.Future[None] = loop.create_future()  # ICE/DTLS failed or closed
        self.close_requested: asyncio.Future[None] = loop.create_future()  # CloseStream
        self.session: LiveSession = open_session(
            services, options, self.transport, request_id=request_id, owner=owner, tags=tags,
            decoder_for=lambda _channel: PcmDecoder(encoding="linear16", sample_rate=RATE,
                                                    channels=1))
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

    # --- aiortc callbacks ---
    def _on_track(self, track: Any) -> None:
        if track.kind == "audio" and self.track is None:
            self.track = track

    def _on_datachannel(self, channel: Any) -> None:
        if channel.label != CHANNEL_LABEL or self.transport.channel is not None:
            return
        self.transport.attach(channel, lambda: self._set(self.gone))
        channel.on("message", self._on_message)

    def _on_message(self, message: Any) -> None:
        try:
            if not isinstance(message, str):
                raise BadMessage("the data channel takes JSON control messages, not binary; "
                                 "audio travels on the track")
            kind = parse_control(message)
        except EarmarkError as err:
            self.session.fail(err)
            return
        if kind == "Finalize":
            self.session.finalize()
        elif kind == "CloseStream":
            self._set(self.close_requested)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._set(self.gone)

    @staticmethod
    def _set(future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_result(None)

    # --- the peer's task ---
    async def run(self) -> None:
        try:
            await self.session.run(self._consume)
        finally:
            try:
                await self.pc.close()
            finally:
                self.services.webrtc.peers.discard(self)
                self.services.sessions.discard(self.session)

    async def _consume(self) -> None:
        """Feeds audio until the track ends, CloseStream or shutdown; raises on failures."""
        loop = asyncio.get_running_loop()
        timeout = CONNECT_TIMEOUT_S
        stops = {self.gone, self.close_requested, *self.session.stops}
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
                self._raise_for(done)
                if done:  # CloseStream or shutdown
                    return
                raise IdleTimeout(f"no audio on the WebRTC track for {timeout:g} s; closing")
            try:
                frame = recv.result()
            except Exception:  # aiortc's MediaStreamError: the remote track ended
                if self.gone.done():
                    raise TransportGone() from None
                return
            timeout = self.settings.idle_timeout_s
            await self._feed(frame)
            self.last_frame_at = loop.time()

    def _raise_for(self, done: set[Any]) -> None:
        """The stream failed, the sender failed, or the peer went away."""
        for future in done & self.session.stops:
            if future is not self.session.draining:
                future.result()
        if self.gone in done:
            raise TransportGone()

    async def _follow_wall_clock(self, now: float) -> None:
        """No packets for STALL_S: feeds the silence the wall clock says has passed."""
        stall = STALL_S if self.last_frame_quiet else STALL_LOUD_S
        if self.last_frame_at is None or now - self.last_frame_at < stall:
            return
        owed = int((now - self.last_frame_at) * RATE) - self.stall_filled
        if owed >= RATE // 100:
            self.stall_filled += owed
            await self.session.feed(bytes(2 * owed))

    async def _feed(self, frame: Any) -> None:
        # Lost packets leave a gap in the timestamps: fill it with silence, so that result
        # times stay session audio time.
        if frame.pts is not None and frame.time_base is not None:
            if self.next_pts is not None and frame.pts > self.next_pts:
                gap_s = min(MAX_GAP_S, float((frame.pts - self.next_pts) * frame.time_base))
                gap = int(gap_s * RATE) - self.stall_filled  # the wall clock filled some
                if gap >= RATE // 100:
                    await self.session.feed(bytes(2 * gap))
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
                await self.session.feed(pcm.tobytes())
        self.services.metrics.audio_received.inc(frame.samples / frame.sample_rate)
