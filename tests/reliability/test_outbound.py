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

from earmark.api.webhooks import MAX_RESPONSE_BYTES, post_pinned
from earmark.config import Settings
from earmark.errors import InvalidParameter
from earmark.ingest.url_safety import check_url, parse_networks
from earmark.ingest.url_source import SourceConfig, SourceError, UrlSource, final_location

LOOPBACK = parse_networks("127.0.0.0/8")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8000/x", "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x", "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/x", "http://192.168.0.1/x", "http://172.16.0.1/x", "http://0.0.0.0/x",
    "http://100.64.0.1/x", "http://224.0.0.1/x", "http://user:pw@example.com/x",
    "file:///etc/passwd", "gopher://example.com/", "http:///nohost",
])
def test_refused_destinations(url):
    with pytest.raises(InvalidParameter):
        check_url(url, [])


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


def test_pull_redirects_are_checked_hop_by_hop(hostile):
    assert final_location(f"{hostile}/hop1", LOOPBACK, {}, timeout_s=5) == \
        f"{hostile}/speech.wav"
    with pytest.raises(SourceError, match="refused"):
        final_location(f"{hostile}/evil", LOOPBACK, {}, timeout_s=5)
    with pytest.raises(SourceError, match="more than"):
        final_location(f"{hostile}/loop", LOOPBACK, {}, timeout_s=5)


async def _pull(url: str) -> list:
    source = UrlSource(url, SourceConfig(headers={}, allow_networks=tuple(LOOPBACK),
                                         reconnect_budget_s=0.5))
    return [item async for item in source.chunks()]


async def test_a_pulled_url_follows_checked_redirects_and_refuses_bad_ones(hostile):
    items = await asyncio.wait_for(_pull(f"{hostile}/hop1"), 30)
    audio = sum(len(i) for i in items if isinstance(i, bytes))
    assert audio >= 2 * 16000 * 2 * 0.9  # the 2 s file, as 16 kHz s16
    items = await asyncio.wait_for(_pull(f"{hostile}/evil"), 30)
    statuses = [i for i in items if not isinstance(i, bytes)]
    assert statuses[-1].state == "failed" and "refused" in statuses[-1].reason
    assert not any(isinstance(i, bytes) for i in items)


def test_the_private_ranges_are_the_standard_ones():
    # The guard leans on ipaddress; pin the cases it must cover.
    for a in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1", "fe80::1", "::1"):
        addr = ipaddress.ip_address(a)
        assert addr.is_private or addr.is_loopback or addr.is_link_local
