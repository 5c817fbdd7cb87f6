"""Outbound safety: webhooks and pulled URLs reach only public addresses (unless allowed),
after DNS resolution, on every redirect, at the address that was checked (no rebinding), with
a cap on what a receiver can make us read."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from earmark.config import Settings
from earmark.errors import InvalidParameter
from earmark.ingest.egress_proxy import EgressProxy
from earmark.ingest.url_source import SourceConfig, UrlSource
from earmark.outbound.url_safety import check_url, parse_networks
from earmark.outbound.webhooks import MAX_RESPONSE_BYTES, post_pinned

LOOPBACK = parse_networks("127.0.0.0/8")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8000/x", "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x", "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/x", "http://192.168.0.1/x", "http://172.16.0.1/x", "http://0.0.0.0/x",
    "http://100.64.0.1/x", "http://224.0.0.1/x", "http://user:pw@example.com/x",
    "file:///etc/passwd", "gopher://example.com/", "http:///nohost",
    # IPv6 forms that carry a refused IPv4 address: 6to4, NAT64
    "http://[2002:7f00:1::]/x", "http://[2002:a9fe:a9fe::1]/x", "http://[64:ff9b::7f00:1]/x",
    "rtsp://[2002:c0a8:1::]/x",
])
def test_refused_destinations(url):
    with pytest.raises(InvalidParameter):
        check_url(url, [])


def test_public_ipv6_and_6to4_of_public_ipv4_pass():
    check_url("http://[2606:4700:4700::1111]/x", [])
    check_url("http://[2002:5db8:d822::]/x", [])  # 6to4 for 93.184.216.34


def test_the_allow_list_opens_exactly_its_networks():
    assert check_url("http://127.0.0.1:9/x", LOOPBACK)
    with pytest.raises(InvalidParameter):
        check_url("http://10.0.0.1/x", LOOPBACK)


def test_a_name_with_any_private_address_is_refused(monkeypatch):
    def both(host, port, *a, **k):  # noqa: ANN001, ANN202
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]
    monkeypatch.setattr(socket, "getaddrinfo", both)
    with pytest.raises(InvalidParameter, match="10.0.0.5"):
        check_url("http://mixed.example/x", [])


async def test_webhook_goes_to_the_checked_address_even_if_dns_changes(monkeypatch):
    """DNS rebinding: the first answer is public, later ones loopback. The request must go to
    the public address it was checked at, with the name kept in Host (and SNI for TLS)."""
    answers = iter(["93.184.216.34"] + ["127.0.0.1"] * 10)

    def rebinding(host, port, *a, **k):  # noqa: ANN001, ANN202
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        status = await post_pinned(client, "https://hooks.example:8443/in?x=1", Settings(),
                                   b"{}", {"Content-Type": "application/json"})
    assert status == 200
    (request,) = seen
    assert request.url.host == "93.184.216.34" and request.url.port == 8443
    assert request.url.path == "/in" and request.url.query == b"x=1"
    assert request.headers["host"] == "hooks.example:8443"
    assert request.extensions["sni_hostname"] == "hooks.example"


class _Hostile(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        self.send_response(200)  # then an endless body
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"x" * 65536)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/evil.m3u8":
            body = (b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
                    b"http://169.254.169.254/latest/seg0.ts\n#EXT-X-ENDLIST\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.apple.mpegurl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        hops = {"/hop1": "/hop2", "/hop2": "/speech.wav",
                "/evil": "http://169.254.169.254/latest/meta-data/",
                "/loop": "/loop"}
        if self.path in hops:
            self.send_response(302)
            self.send_header("Location", hops[self.path])
            self.end_headers()
            return
        if self.path == "/speech.wav":
            data = self.server.wav  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.fixture(scope="module")
def hostile():
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                        "sine=frequency=440:duration=2", "-ar", "16000", "-y", str(wav)],
                       check=True)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
        server.wav = wav.read_bytes()  # type: ignore[attr-defined]
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()
        server.server_close()


async def test_webhook_reads_at_most_the_cap_and_never_follows_redirects(hostile):
    settings = Settings(url_allow_networks="127.0.0.0/8")
    async with httpx.AsyncClient(timeout=5) as client:
        started = time.monotonic()
        status = await post_pinned(client, f"{hostile}/flood", settings, b"{}", {})
        assert status == 200 and time.monotonic() - started < 5
        assert MAX_RESPONSE_BYTES <= 1 << 20
        assert await post_pinned(client, f"{hostile}/redirect", settings, b"{}", {}) == 307


@pytest.fixture(scope="module")
def egress():
    proxy = EgressProxy(LOOPBACK).start()
    yield proxy
    proxy.close()


async def _pull(url: str, proxy: EgressProxy | None) -> list:
    source = UrlSource(url, SourceConfig(headers={}, reconnect_budget_s=0.5,
                                         proxy_url=proxy.url if proxy else None))
    return [item async for item in source.chunks()]


def _audio_bytes(items: list) -> int:
    return sum(len(i) for i in items if isinstance(i, bytes))


async def test_a_pull_follows_redirects_only_to_allowed_addresses(hostile, egress):
    items = await asyncio.wait_for(_pull(f"{hostile}/hop1", egress), 30)
    assert _audio_bytes(items) >= 2 * 16000 * 2 * 0.9  # the 2 s file, as 16 kHz s16
    before = egress.refused
    items = await asyncio.wait_for(_pull(f"{hostile}/evil", egress), 30)
    assert _audio_bytes(items) == 0 and egress.refused > before
    last = [i for i in items if not isinstance(i, bytes)][-1]
    assert last.state == "failed" and "403" in last.reason
    # Without the proxy nothing could check a redirect's target: none is followed.
    items = await asyncio.wait_for(_pull(f"{hostile}/hop1", None), 30)
    assert _audio_bytes(items) == 0


async def test_hls_segments_at_refused_addresses_are_not_fetched(hostile, egress):
    before = egress.refused
    items = await asyncio.wait_for(_pull(f"{hostile}/evil.m3u8", egress), 60)
    assert _audio_bytes(items) == 0 and egress.refused > before


async def test_a_pull_is_checked_again_when_ffmpeg_connects(hostile, monkeypatch):
    """DNS rebinding on a pulled URL: the name passes the API's check, then resolves to a
    refused address; the proxy checks the connection itself and refuses it."""
    port = int(hostile.rsplit(":", 1)[1])
    answers = iter(["127.0.0.1"] + ["127.0.0.2"] * 20)
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):  # noqa: ANN001, ANN202
        if host == "media.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    only_first = parse_networks("127.0.0.1/32")
    url = f"http://media.test:{port}/speech.wav"
    check_url(url, only_first)  # what the API does before starting the pull
    proxy = EgressProxy(only_first).start()
    try:
        items = await asyncio.wait_for(_pull(url, proxy), 30)
    finally:
        proxy.close()
    assert _audio_bytes(items) == 0 and proxy.refused >= 1


def test_the_private_ranges_are_the_standard_ones():
    # The guard leans on ipaddress; pin the cases it must cover.
    for a in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1", "fe80::1", "::1"):
        addr = ipaddress.ip_address(a)
        assert addr.is_private or addr.is_loopback or addr.is_link_local


async def test_rtmp_and_rtsp_hosts_are_checked_again_and_pinned(monkeypatch):
    """Not HTTP, so not through the proxy: the host is checked again at each connection and
    FFmpeg gets the vetted address. A name that rebinds after the API's check is refused."""
    answers = iter(["127.0.0.1"] + ["127.0.0.2"] * 20)
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):  # noqa: ANN001, ANN202
        if host == "live.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), 1935))]
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    only_first = parse_networks("127.0.0.1/32")
    url = "rtmp://live.test/app/stream"
    check_url(url, only_first)
    source = UrlSource(url, SourceConfig(headers={}, reconnect_budget_s=0.5,
                                         allow_networks=tuple(only_first)))
    items = await asyncio.wait_for(_collect(source), 30)
    last = [i for i in items if not isinstance(i, bytes)][-1]
    assert last.state == "failed" and "127.0.0.2" in last.reason


async def _collect(source: UrlSource) -> list:
    return [item async for item in source.chunks()]


async def test_the_proxy_drops_the_source_side_when_ffmpeg_hangs_up(egress):
    """A source that accepts and then never answers: once the client side closes, the proxy
    must close its connection to the source too (no socket kept per reconnect)."""
    accepted: list[asyncio.StreamWriter] = []
    closed = asyncio.Event()

    async def stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # returns at EOF: the proxy closed its side
        closed.set()

    server = await asyncio.start_server(stalled, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", egress.port)
    auth = egress.url.split("//", 1)[1].split("@", 1)[0]
    import base64

    token = base64.b64encode(auth.encode()).decode()
    writer.write(f"GET http://127.0.0.1:{port}/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Proxy-Authorization: Basic {token}\r\n\r\n".encode())
    await writer.drain()
    for _ in range(100):
        if accepted:
            break
        await asyncio.sleep(0.02)
    assert accepted, "the proxy connected to the source"
    writer.close()  # FFmpeg gives up
    await asyncio.wait_for(closed.wait(), 5)
    for w in accepted:
        w.close()
    server.close()
    await server.wait_closed()


class _Counter:
    """A listener on a loopback address the pull must never reach; counts connections."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def _rtsp_redirector(location: str) -> tuple[socket.socket, int]:
    """A permitted RTSP host that answers every request with 302 to ``location``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    got = conn.recv(4096)
                    if not got:
                        break
                    data += got
                cseq = next((line.split(b":", 1)[1].strip() for line in data.split(b"\r\n")
                             if line.lower().startswith(b"cseq:")), b"1")
                conn.sendall(b"RTSP/1.0 302 Found\r\nCSeq: " + cseq + b"\r\nLocation: "
                             + location.encode() + b"\r\nContent-Length: 0\r\n\r\n")
                time.sleep(0.5)
    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


async def test_an_rtsp_redirect_to_loopback_never_reaches_it():
    only_first = parse_networks("127.0.0.1/32")
    target = _Counter("127.0.0.2")
    server, port = _rtsp_redirector(f"rtsp://127.0.0.2:{target.port}/private")
    proxy = EgressProxy(only_first).start()
    try:
        url = f"rtsp://127.0.0.1:{port}/live"
        check_url(url, only_first)
        source = UrlSource(url, SourceConfig(headers={}, reconnect_budget_s=0.5,
                                             allow_networks=tuple(only_first), egress=proxy,
                                             proxy_url=proxy.url))
        items = await asyncio.wait_for(_collect(source), 30)
    finally:
        proxy.close()
        server.close()
        target.close()
    assert target.accepted == 0, "FFmpeg followed the redirect to loopback"
    last = [i for i in items if not isinstance(i, bytes)][-1]
    assert last.state == "failed" and "403" in last.reason, last


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.server.location)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


async def test_no_proxy_in_the_environment_does_not_bypass_the_egress_checks(monkeypatch):
    only_first = parse_networks("127.0.0.1/32")
    target = _Counter("127.0.0.2")
    monkeypatch.setenv("no_proxy", "127.0.0.2,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.2,localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    server.location = f"http://127.0.0.2:{target.port}/private"  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = EgressProxy(only_first).start()
    try:
        items = await asyncio.wait_for(
            _pull(f"http://127.0.0.1:{server.server_port}/stream", proxy), 30)
    finally:
        proxy.close()
        server.shutdown()
        server.server_close()
        target.close()
    assert target.accepted == 0, "the redirect bypassed the proxy"
    assert _audio_bytes(items) == 0 and proxy.refused >= 1
