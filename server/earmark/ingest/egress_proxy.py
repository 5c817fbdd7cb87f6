"""An in-process HTTP proxy that FFmpeg's HTTP(S) connections for pulled URLs go through.

FFmpeg resolves names itself, follows redirects itself and fetches the segment URLs an HLS
playlist lists, none of which a check made before ``av.open`` can see. With this proxy set as
FFmpeg's ``http_proxy``, every connection is a request here: ``CONNECT host:port`` for https,
an absolute-form ``GET http://host/...`` for http. Each target is resolved and checked like
the first URL (``url_safety.resolve_checked``), and the connection goes to the address that
passed, so a DNS answer that changes after the check (rebinding), a redirect, or a playlist
entry cannot reach a private address. Refusals answer 403 with the reason.

The proxy listens on loopback with a random per-process credential, so other local users
cannot use it. It runs on its own thread and event loop: the reader threads of pulls use it,
whatever the server's loop is doing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import threading
from urllib.parse import urlsplit

from earmark.errors import InvalidParameter
from earmark.ingest.pipes import pipe, until_either_ends
from earmark.ingest.rtsp_relay import RtspRelay
from earmark.outbound.url_safety import resolve_checked

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 10.0


def ignore_no_proxy() -> None:
    """FFmpeg's HTTP client skips its ``http_proxy`` option for hosts in the ``no_proxy``
    environment variable, read at every connection: with a common ``no_proxy`` set, a
    redirect or an HLS segment went straight to loopback. Pulls must all pass the proxy, so
    the variable is removed from this process's environment (once; it is logged)."""
    for name in ("no_proxy", "NO_PROXY"):
        if name in os.environ:
            value = os.environ.pop(name)
            logger.warning("ignoring %s=%r: every pulled URL goes through the egress checks",
                           name, value)


class EgressProxy:
    def __init__(self, allow_networks: list) -> None:  # noqa: ANN001 - ipaddress networks
        self.allow_networks = allow_networks
        self._user, self._password = "earmark", secrets.token_urlsafe(18)
        self._auth = "Basic " + base64.b64encode(
            f"{self._user}:{self._password}".encode()).decode()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="earmark-egress", daemon=True)
        self.port = 0
        self.refused = 0

    @property
    def url(self) -> str:
        """For FFmpeg's ``http_proxy`` option (credential included)."""
        return f"http://{self._user}:{self._password}@127.0.0.1:{self.port}"

    def rtsp_relay(self, address: str, port: int) -> RtspRelay:
        """A relay, on this proxy's loop, for one RTSP connection to a vetted address."""
        return RtspRelay(self._loop, address, port).start()

    def start(self) -> EgressProxy:
        ignore_no_proxy()
        self._thread.start()
        self._ready.wait(10)
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _client(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            await self._forward(head, reader, writer)
        except Exception:  # noqa: BLE001 - one bad connection must not stop the proxy
            logger.debug("egress proxy connection failed", exc_info=True)
        finally:
            writer.close()

    async def _forward(self, head: bytes, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = (lines[0].split(" ") + ["", "", ""])[:3]
        headers = [line for line in lines[1:] if line]
        auth = next((h.split(":", 1)[1].strip() for h in headers
                     if h.lower().startswith("proxy-authorization:")), "")
        if auth != self._auth:
            await _answer(writer, 407, "proxy authentication required")
            return
        headers = [h for h in headers if not h.lower().startswith(("proxy-", "connection:"))]
        if method.upper() == "CONNECT":
            host, _, port = target.rpartition(":")
            url = f"https://{host}:{port}/"
        else:
            url = target
        try:
            parts, address = await asyncio.to_thread(
                resolve_checked, url, self.allow_networks, param="url")
        except InvalidParameter as exc:
            self.refused += 1
            logger.info("egress refused: %s", exc.message)
            await _answer(writer, 403, exc.message)
            return
        port_number = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port_number), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            await _answer(writer, 502, f"cannot connect: {exc}")
            return
        if method.upper() == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            split = urlsplit(target)
            path = (split.path or "/") + (f"?{split.query}" if split.query else "")
            request = "\r\n".join([f"{method} {path} {version}", *headers,
                                   "Connection: close", "", ""])
            upstream_writer.write(request.encode("latin-1"))
        try:
            # A stalled source must not keep its socket open after FFmpeg gave up on it
            # (rw_timeout) and reconnected.
            await until_either_ends(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = reason.encode()
    # FFmpeg sends the proxy credential only after a challenge.
    challenge = 'Proxy-Authenticate: Basic realm="earmark"\r\n' if status == 407 else ""
    writer.write(f"HTTP/1.1 {status} Refused\r\nContent-Type: text/plain\r\n{challenge}"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
