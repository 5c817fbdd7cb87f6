"""RTSP pulls go through a loopback relay that refuses redirects.

FFmpeg's RTSP client follows ``301/302/305`` answers itself: it connects to the ``Location``
host, which no check of ours sees (a permitted host could send a pull to loopback). So a
checked RTSP pull connects FFmpeg to a relay on 127.0.0.1, and the relay connects to the
vetted address and reads what the server sends: RTSP answers and requests (headers and a
``Content-Length`` body) and interleaved ``$`` data frames (RTP over the same TCP connection,
which is why relayed pulls use ``rtsp_transport=tcp``). An answer with a 3xx status is not
passed on: FFmpeg gets ``403 Forbidden`` for that request instead, and the pull fails saying
so. What the client sends passes unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

from earmark.ingest.pipes import pipe, until_either_ends

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 10.0
_STATUS = re.compile(rb"^RTSP/\d\.\d (\d{3})")
_CSEQ = re.compile(rb"(?im)^cseq:\s*(\d+)\s*$")
_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)\s*$")


class Refused(Exception):
    pass


@dataclass
class ServerStream:
    """The server-to-client side of an RTSP connection, message by message (pure: bytes in,
    bytes to pass out). ``feed`` raises ``Refused`` with a 403 to send in place of a redirect."""

    buffer: bytearray = field(default_factory=bytearray)
    body_left: int = 0  # bytes of a message body (or a data frame) still to pass through

    def feed(self, data: bytes) -> bytes:
        self.buffer += data
        out = bytearray()
        while self.buffer:
            if self.body_left:
                take = min(self.body_left, len(self.buffer))
                out += self.buffer[:take]
                del self.buffer[:take]
                self.body_left -= take
                continue
            if self.buffer[0:1] == b"$":  # interleaved data: '$', channel, 16-bit length
                if len(self.buffer) < 4:
                    break
                self.body_left = 4 + int.from_bytes(self.buffer[2:4], "big")
                continue
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    raise Refused(b"")
                break
            head = bytes(self.buffer[:end + 4])
            status = _STATUS.match(head)
            if status and status.group(1).startswith(b"3"):
                cseq = _CSEQ.search(head)
                raise Refused(b"RTSP/1.0 403 Forbidden\r\n"
                              + (b"CSeq: " + cseq.group(1) + b"\r\n" if cseq else b"")
                              + b"Content-Length: 0\r\n\r\n")
            out += head
            del self.buffer[:end + 4]
            length = _LENGTH.search(head)
            self.body_left = int(length.group(1)) if length else 0
        return bytes(out)


class RtspRelay:
    """A listener on 127.0.0.1 for one pull's RTSP connections, each relayed to ``address``.
    Runs on the given loop (the egress proxy's); ``close`` is safe from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str, port: int) -> None:
        self._loop = loop
        self.address, self.target_port = address, port
        self.port = 0
        self.refused = 0
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> RtspRelay:
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
            self._server = None

    async def _client(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(self.address, self.target_port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            writer.close()
            return
        try:
            await until_either_ends(pipe(reader, up_writer), self._filtered(up_reader, writer))
        finally:
            up_writer.close()
            writer.close()

    async def _filtered(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        stream = ServerStream()
        try:
            while data := await reader.read(65536):
                try:
                    writer.write(stream.feed(data))
                except Refused as refusal:
                    self.refused += 1
                    logger.info("RTSP redirect from %s refused", self.address)
                    writer.write(refusal.args[0])
                    await writer.drain()
                    return
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

