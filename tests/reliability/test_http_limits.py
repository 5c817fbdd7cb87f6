"""HTTP requests that starved the server (issue 27, items 4 and 5): half-open connections,
keyless bodies parsed before the key was checked, bodies with no size limit."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.conftest import running_server

KEY = "limits-key"


@pytest.fixture(scope="module")
def guarded():
    with running_server(api_keys=KEY, header_timeout_s="2",
                        max_upload_bytes=str(4 << 20)) as server:
        yield server


def _raw(server, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(head)
    return s


def _status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        if not got:
            break
        data += got
    return int(data.split(b" ", 2)[1]), data


def test_half_open_connections_are_closed_and_new_clients_served(guarded):
    held = [_raw(guarded, b"GET /heal") for _ in range(1100)]
    try:
        time.sleep(0.5)
        assert httpx.get(f"{guarded.http}/healthz", timeout=5).status_code == 200
        deadline = time.monotonic() + 2 + 5  # the header timeout, with a margin
        for s in held:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            assert s.recv(1) == b"", "the server closed the incomplete request"
    finally:
        for s in held:
            s.close()
    # A connection that completes its request in time is served as before.
    assert httpx.get(f"{guarded.http}/readyz", timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/v1/auth/grant", "/v2/stream", "/v1/process/audio",
                                  "/audio-stream/start", "/v1/tag-collections"])
def test_a_keyless_body_is_refused_before_a_byte_of_it_is_read(guarded, path):
    # 12 MB declared, none sent: only a server that does not wait for the body can answer.
    started = time.perf_counter()
    with _raw(guarded, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {12 << 20}\r\n\r\n".encode()) as s:
        status, head = _status(s)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert status == 401, head
    assert b"UNAUTHORIZED" in head or status == 401
    print(f"{path}: 401 in {elapsed_ms:.1f} ms")


@pytest.mark.parametrize("path,limit", [("/v1/auth/grant", 64 << 10), ("/v2/stream", 16 << 20),
                                        ("/v1/process/audio", 4 << 20),
                                        ("/v1/tag-collections", 1 << 20)])
def test_bodies_over_the_route_limit_get_413(guarded, path, limit):
    with _raw(guarded, f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {KEY}\r\n"
                       f"Content-Length: {limit + 1}\r\n\r\n".encode()) as s:
        status, head = _status(s)
    assert status == 413, head
    assert b"PAYLOAD_TOO_LARGE" in head or status == 413


def test_a_chunked_body_is_counted_as_it_streams(guarded):
    def body():
        for _ in range(40):
            yield b'{"audio_data": "' + b"A" * (1 << 20)

    r = httpx.post(f"{guarded.http}/v2/stream", content=body(), timeout=30,
                   headers={"Authorization": f"Token {KEY}",
                            "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert httpx.get(f"{guarded.http}/readyz", timeout=5).status_code == 200


def test_within_the_limits_requests_work_as_before(guarded):
    r = httpx.post(f"{guarded.http}/v1/auth/grant", json={"ttl_seconds": 5},
                   headers={"Authorization": f"Token {KEY}"})
    assert r.status_code == 200, r.text
    r = httpx.post(f"{guarded.http}/v1/auth/grant", json={"ttl_seconds": 5})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("body", [{"ttl_seconds": True}, {"ttl_seconds": "30"}])
def test_a_token_lifetime_must_be_a_number(guarded, body):
    r = httpx.post(f"{guarded.http}/v1/auth/grant", json=body,
                   headers={"Authorization": f"Token {KEY}"})
    assert r.status_code == 400 and r.json()["param"] == "ttl_seconds", r.text


@pytest.mark.parametrize("convo", ["../../etc/passwd", "a/b", "..", "."])
def test_a_convo_id_that_could_not_be_read_back_is_refused(guarded, convo):
    r = httpx.post(f"{guarded.http}/stream/tag", headers={"Authorization": f"Token {KEY}"},
                   json={"url": "https://example.com/live.m3u8", "convoId": convo})
    assert r.status_code == 400 and r.json()["param"] == "convoId", r.text
