"""Pulls a media URL with PyAV (FFmpeg): audio stream only, 16 kHz mono 16-bit PCM out.

A reader thread opens the source, keeps only the audio stream (every other stream is
discarded, so video is never decoded, and HLS downloads only the chosen variant), resamples
once per connection with one kept resampler, and hands PCM chunks to the event loop through a
bounded queue: a source faster than real time (a file) is read only as fast as it is consumed.
Live sources that stall or drop are reopened with backoff within a budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlunsplit

from earmark.core.events import SourceStatus
from earmark.errors import InvalidParameter, SourceError
from earmark.ingest.egress_proxy import ignore_no_proxy
from earmark.outbound.url_safety import pinned_url, resolve_checked

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = 3200  # 200 ms of 16 kHz audio per queued chunk
QUEUE_CHUNKS = 25  # 5 s of audio buffered at most
FFMPEG_PROTOCOLS = "http,https,tcp,tls,crypto,rtmp,rtmps,rtsp,rtsps,rtp,udp,srtp,hls"


class _DurationReached(Exception):
    """The pull reached ``max_duration_s``: an end, not a fault to retry."""


@dataclass(frozen=True)
class SourceConfig:
    headers: dict[str, str]
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    reconnect_budget_s: float = 30.0
    max_duration_s: float = 4 * 3600.0
    rtsp_transport: str = "tcp"
    # The server's EgressProxy (FFmpeg's http_proxy): it checks every HTTP(S) connection,
    # redirects and HLS segments included. Without one, redirects are not followed.
    proxy_url: str | None = None
    # Set for a server's pulls: an RTMP/RTSP host is checked again at every (re)connection and
    # FFmpeg is given the vetted address, so a changed DNS answer cannot redirect it.
    allow_networks: tuple | None = None
    # The EgressProxy itself: with allow_networks, RTSP goes through its redirect-refusing
    # relay (ingest/rtsp_relay.py), since FFmpeg follows RTSP redirects on its own.
    egress: Any = None
    channels: int = 1  # interleaved channels out (1: mixed down); see probe_channels
    # A resumed stream job: on the first connection, a source with a known duration (a file,
    # VOD HLS) drops this much audio, where the job had got to; a live one has moved on by
    # itself and drops nothing.
    skip_if_finite_s: float = 0.0


def _pick_audio(container):  # noqa: ANN001, ANN202 - PyAV types
    """The audio stream to keep: for HLS variants, the one with the lowest bandwidth."""
    audio = [s for s in container.streams if s.type == "audio"]
    if not audio:
        raise SourceError("the source has no audio stream")

    def bandwidth(stream) -> int:  # noqa: ANN001
        try:
            return int(stream.metadata.get("variant_bitrate", 0))
        except ValueError:
            return 0

    return min(audio, key=bandwidth)


class UrlSource:
    """One pull. ``chunks()`` yields PCM bytes and SourceStatus events until it ends."""

    def __init__(self, url: str, config: SourceConfig) -> None:
        self.url = url
        self.config = config
        self._queue: asyncio.Queue[bytes | SourceStatus | None] = asyncio.Queue(QUEUE_CHUNKS)
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="earmark-url", daemon=True)
        self.samples = 0
        self._connected = False  # gave audio at least once: later failures are worth a retry

    async def chunks(self) -> AsyncIterator[bytes | SourceStatus]:
        self._thread.start()
        try:
            while (item := await self._queue.get()) is not None:
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        # Unblock a reader waiting on a full queue.
        while not self._queue.empty():
            self._queue.get_nowait()

    # ------------------------------------------------------------ reader thread
    def _put(self, item: bytes | SourceStatus | None) -> bool:
        """Blocks while the queue is full (backpressure); False once the pull is stopped."""
        while not self._stop.is_set():
            future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
            try:
                future.result(timeout=0.5)
                return True
            except TimeoutError:
                future.cancel()
            except RuntimeError:  # the loop is gone
                return False
        return False

    def _run(self) -> None:
        deadline: float | None = None
        backoff = 0.5
        while not self._stop.is_set():
            samples = self.samples
            try:
                finite = self._pull_once(self._connected)
                if finite:
                    self._put(SourceStatus("ended", "end of the source"))
                    break
                reason = "the source stopped sending"
            except _DurationReached:
                self._put(SourceStatus("ended", "the session reached its maximum duration"))
                break
            except SourceError as exc:
                if not self._connected:  # bad URL, 404, no audio: no point retrying
                    self._put(SourceStatus("failed", exc.message))
                    break
                reason = exc.message
            except Exception as exc:  # noqa: BLE001 - FFmpeg raises many kinds
                reason = _describe(exc)
                if not self._connected:
                    self._put(SourceStatus("failed", reason))
                    break
            if self._stop.is_set():
                break
            # Audio flowed again: this outage gets its own budget. An open that gave no
            # audio (a source of garbage) does not reset it, or it would retry forever.
            if self.samples != samples:
                deadline, backoff = None, 0.5
            now = time.monotonic()
            deadline = deadline or now + self.config.reconnect_budget_s
            if now >= deadline:
                self._put(SourceStatus("failed", f"gave up reconnecting: {reason}"))
                break
            self._put(SourceStatus("reconnecting", reason))
            self._stop.wait(min(backoff, max(0.0, deadline - now)))
            backoff = min(backoff * 2, 8.0)
        self._put(None)

    def _open(self, url: str, options: dict[str, str]):  # noqa: ANN202 - PyAV container
        import av

        try:
            return av.open(url, options=options,
                           timeout=(self.config.open_timeout_s, self.config.read_timeout_s))
        except av.error.HTTPNotFoundError:
            raise SourceError("the source answered 404 Not Found") from None
        except av.error.HTTPForbiddenError:
            raise SourceError("403 Forbidden: the source refused, or it (through a redirect "
                              "or a playlist entry) leads to a private address, which is "
                              "refused") from None
        except av.error.FFmpegError as exc:
            raise SourceError(f"cannot open the source: {_describe(exc)}") from None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        """The opened container (PyAV), closed on exit with any relay it went through."""
        options = {"protocol_whitelist": FFMPEG_PROTOCOLS, "rw_timeout": str(
            int(self.config.read_timeout_s * 1_000_000))}
        if self.config.headers:
            options["headers"] = "".join(f"{k}: {v}\r\n" for k, v in self.config.headers.items())
        if self.url.startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = self.config.rtsp_transport
        if self.url.startswith(("http:", "https:")):
            if self.config.proxy_url:
                ignore_no_proxy()
                options["http_proxy"] = self.config.proxy_url
            else:
                options["max_redirects"] = "0"  # nothing would check where they lead
        url = self.url
        relay = None
        if self.config.allow_networks is not None and url.startswith(("rtmp", "rtsp")):
            try:
                parts, address = resolve_checked(url, list(self.config.allow_networks))
            except InvalidParameter as exc:
                raise SourceError(exc.message) from None
            url, _ = pinned_url(parts, address)
            if parts.scheme.lower() == "rtsp" and self.config.egress is not None:
                relay = self.config.egress.rtsp_relay(address, parts.port or 554)
                url = urlunsplit(("rtsp", f"127.0.0.1:{relay.port}", parts.path or "/",
                                  parts.query, ""))
                options["rtsp_transport"] = "tcp"  # RTP inside the relayed connection
        try:
            with self._open(url, options) as container:
                yield container
        finally:
            if relay is not None:
                relay.close()

    def probe_channels(self, most: int = 8) -> int:
        """The audio stream's channel count (at most ``most``): one short connection, made
        before a multichannel pull so its channel count is fixed for the whole pull."""
        with self._connect() as container:
            stream = _pick_audio(container)
            channels = stream.codec_context.channels or 1
        return max(1, min(most, int(channels)))

    def _pull_once(self, reconnect: bool) -> bool:
        """Pulls until the source ends; True when it was a finite file that ended."""
        import av
        import av.stream

        with self._connect() as container:
            stream = _pick_audio(container)
            for other in container.streams:
                if other is not stream:
                    other.discard = av.stream.Discard.all  # never demux or decode video
            # Over HTTP (files, HLS) a clean end of the demuxer is the real end: a live HLS
            # playlist is polled until it says #EXT-X-ENDLIST. RTMP/RTSP publishers that stop
            # may come back, so those reconnect.
            finite = self.url.startswith(("http:", "https:"))
            channels = self.config.channels
            layout = "mono" if channels == 1 else f"{channels}c"
            resampler = av.AudioResampler(format="s16", layout=layout, rate=16000)
            chunk = CHUNK_SAMPLES * 2 * channels
            self._put(SourceStatus("live", "reconnected" if reconnect else None))
            skip = 0
            if not reconnect and container.duration is not None:
                skip = int(self.config.skip_if_finite_s * 16000) * 2 * channels
            pending = bytearray()
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return True
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        pending += out.to_ndarray().astype("<i2", copy=False).tobytes()
                if skip:
                    dropped = min(skip, len(pending))
                    del pending[:dropped]
                    skip -= dropped
                while len(pending) >= chunk:
                    if not self._put(bytes(pending[:chunk])):
                        return True
                    self._connected = True  # it gave audio: later failures are worth a retry
                    del pending[:chunk]
                    self.samples += CHUNK_SAMPLES
                    if self.samples / 16000 > self.config.max_duration_s:
                        raise _DurationReached()
            for out in resampler.resample(None):
                pending += out.to_ndarray().astype("<i2", copy=False).tobytes()
            if pending:
                self._put(bytes(pending))
                self.samples += len(pending) // (2 * channels)
            return finite


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]

