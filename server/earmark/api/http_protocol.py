"""uvicorn's h11 protocol with a header timeout: a connection must finish its request line
and headers within ``header_timeout_s`` of opening (or of its previous response).

uvicorn times out idle keep-alive connections but not incomplete requests, and any byte
resets its keep-alive timer, so 1,100 clients that each sent half a request line held 1,100
descriptors forever (slowloris) and new clients timed out at the descriptor limit. Once the
headers are in, the route owns the request (uploads stream for as long as they flow).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def header_timeout_protocol(header_timeout_s: float) -> type[asyncio.Protocol]:
    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in
                self._disarm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm_header_timer()  # the next request on this connection

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_timeout)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            # Upgraded to a WebSocket: that protocol owns the transport now.
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return
            if self.conn.their_state is h11.IDLE:
                self.transport.close()

    return HeaderTimeoutProtocol


def frame_limit_ws_protocol() -> type[asyncio.Protocol]:
    """uvicorn's sans-I/O websockets protocol, sending Deepgram's ``Error`` before the 1009
    close when a frame is over the limit (``ws_max_size``). The library refuses such a frame
    from its header, before reading its payload, so the app never sees it and cannot say
    why: a 10 MB frame got a bare 1009."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.exceptions import PayloadTooBig
    from websockets.frames import Frame, Opcode

    from earmark.dialects.deepgram import error_message
    from earmark.errors import FrameTooLarge

    class FrameLimitProtocol(WebSocketsSansIOProtocol):
        def handle_parser_exception(self) -> None:
            if isinstance(self.conn.parser_exc, PayloadTooBig):
                err = FrameTooLarge(f"a frame is over the {self.config.ws_max_size}-byte limit")
                # Ahead of the close frame the library has queued (server frames are
                # unmasked; an uncompressed frame is valid with any extension).
                self.transport.write(Frame(Opcode.TEXT, error_message(err)).serialize(
                    mask=False, extensions=[]))
            super().handle_parser_exception()

    return FrameLimitProtocol
