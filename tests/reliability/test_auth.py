"""Auth everywhere, against a real server: hashed keys made by the CLI, per-key limits,
single-use socket tokens, key scoping of stored objects, and no secret in the log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets

from tests.conftest import ROOT, running_server
from tests.e2e.client import url, wav_bytes

STATIC_KEY = "static-key-for-tests-0123456789"


def make_key(data_dir: str, name: str, *extra: str) -> str:
    out = subprocess.run([sys.executable, "-m", "earmark", "keys", "create", "--name", name,
                          *extra], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"EARMARK_DATA_DIR": data_dir, "PATH": "/usr/bin:/bin"})
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def keyed():
    with tempfile.TemporaryDirectory(prefix="earmark-keys-") as data:
        keys = {"a": make_key(data, "alice"), "b": make_key(data, "bob"),
                "slow": make_key(data, "slow", "--rpm", "5"),
                "single": make_key(data, "single", "--max-sessions", "1")}
        digest = hashlib.sha256(STATIC_KEY.encode()).hexdigest()
        with running_server(data_dir=data, api_keys=f"sha256:{digest}", log_level="debug",
                            url_allow_networks="127.0.0.0/8") as srv:
            yield srv, keys, data


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


def test_keys_are_stored_only_as_hashes_and_work_in_every_form(keyed):
    srv, keys, data = keyed
    raw = b"".join(p.read_bytes() for p in Path(data).glob("earmark.db*"))
    for key in keys.values():
        assert key.encode() not in raw
        assert hashlib.sha256(key.encode()).hexdigest().encode() in raw
    with httpx.Client(base_url=srv.http) as c:
        assert c.get("/v1/job/x").status_code == 401
        assert c.get("/v1/job/x", headers=h("em_wrong")).status_code == 401
        assert c.get("/v1/job/x", headers=h(keys["a"])).status_code == 404
        assert c.get("/v1/job/x", headers=h(STATIC_KEY)).status_code == 404  # sha256: form
        assert c.get(f"/v1/job/x?token={keys['b']}").status_code == 404


def test_revoked_key_is_refused_on_the_running_server(keyed):
    srv, _, data = keyed
    key = make_key(data, "temp")
    with httpx.Client(base_url=srv.http) as c:
        deadline = time.monotonic() + 5
        while c.get("/v1/job/x", headers=h(key)).status_code != 404:
            assert time.monotonic() < deadline, "a new key works within the refresh"
            time.sleep(0.2)
        listing = subprocess.run([sys.executable, "-m", "earmark", "keys", "list"], cwd=ROOT,
                                 capture_output=True, text=True, check=True,
                                 env={"EARMARK_DATA_DIR": data, "PATH": "/usr/bin:/bin"})
        assert key not in listing.stdout
        key_id = next(line.split()[0] for line in listing.stdout.splitlines() if "temp" in line)
        subprocess.run([sys.executable, "-m", "earmark", "keys", "revoke", key_id], cwd=ROOT,
                       check=True, capture_output=True,
                       env={"EARMARK_DATA_DIR": data, "PATH": "/usr/bin:/bin"})
        deadline = time.monotonic() + 5
        while c.get("/v1/job/x", headers=h(key)).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key stops working within 5 s"
            time.sleep(0.2)


def _revoke(data: str, name: str) -> None:
    env = {"EARMARK_DATA_DIR": data, "PATH": "/usr/bin:/bin"}
    listing = subprocess.run([sys.executable, "-m", "earmark", "keys", "list"], cwd=ROOT,
                             capture_output=True, text=True, check=True, env=env)
    key_id = next(line.split()[0] for line in listing.stdout.splitlines()
                  if line.split()[2:3] == [name])
    subprocess.run([sys.executable, "-m", "earmark", "keys", "revoke", key_id], cwd=ROOT,
                   check=True, capture_output=True, env=env)


async def test_revocation_ends_the_key_sockets_and_voids_its_tokens(keyed):
    srv, keys, data = keyed
    key = make_key(data, "revoked-live")
    other = keys["b"]
    async with httpx.AsyncClient(base_url=srv.http) as c:
        deadline = time.monotonic() + 5
        while (r := await c.post("/v1/auth/grant", headers=h(key))).status_code != 200:
            assert time.monotonic() < deadline, "a new key works within the refresh"
            await asyncio.sleep(0.2)
        token = r.json()["access_token"]
    async with websockets.connect(url(srv.ws), additional_headers=h(key)) as ws, \
            websockets.connect(url(srv.ws), additional_headers=h(other)) as bystander:
        await ws.send(np.zeros(1600, np.int16).tobytes())
        _revoke(data, "revoked-live")
        revoked_at = time.monotonic()
        got: list[dict] = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:  # the socket keeps streaming until the server ends it
                await ws.send(np.zeros(1600, np.int16).tobytes())
                try:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 0.1)))
                except TimeoutError:
                    pass
                assert time.monotonic() - revoked_at < 4, "still open 4 s after revocation"
        ended_s = time.monotonic() - revoked_at
        assert ws.close_code == 1008
        errors = [m for m in got if m.get("type") == "Error"]
        assert errors and errors[-1]["code"] == "UNAUTHORIZED", got
        assert ended_s < 2.5, ended_s  # checked every second (docs/security.md: within 2 s)
        # another key's socket is untouched
        await bystander.send(json.dumps({"type": "CloseStream"}))
        assert json.loads(await bystander.recv())["type"] == "Metadata"
    with pytest.raises(websockets.InvalidStatus) as err:  # the token minted before is void
        async with websockets.connect(url(srv.ws, token=token)):
            pass
    assert err.value.response.status_code == 401


def test_requests_per_minute_are_limited_per_key_with_retry_after(keyed):
    srv, keys, _ = keyed
    with httpx.Client(base_url=srv.http) as c:
        codes = [c.get("/v1/job/x", headers=h(keys["slow"])).status_code for _ in range(7)]
        assert codes[:5] == [404] * 5 and codes[5:] == [429, 429]
        refused = c.get("/v1/job/x", headers=h(keys["slow"]))
        assert refused.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["Retry-After"]) <= 12  # 5 rpm: one back every 12 s
        assert c.get("/v1/job/x", headers=h(keys["a"])).status_code == 404  # others unaffected


async def test_sessions_per_key_are_limited(keyed):
    srv, keys, _ = keyed
    async with websockets.connect(url(srv.ws), additional_headers=h(keys["single"])):
        with pytest.raises(websockets.InvalidStatus) as err:
            async with websockets.connect(url(srv.ws), additional_headers=h(keys["single"])):
                pass
        assert err.value.response.status_code == 429
        async with websockets.connect(url(srv.ws), additional_headers=h(keys["b"])):
            pass  # another key still gets in


async def test_temporary_token_opens_one_socket_once_and_nothing_else(keyed):
    srv, keys, _ = keyed
    async with httpx.AsyncClient(base_url=srv.http) as c:
        assert (await c.post("/v1/auth/grant")).status_code == 401
        r = await c.post("/v1/auth/grant", headers=h(keys["a"]))
        assert r.status_code == 200, r.text
        token, ttl = r.json()["access_token"], r.json()["expires_in"]
        assert token.startswith("emt_") and ttl == 30
        # Tokens are for sockets: an HTTP route refuses them, and they mint nothing.
        assert (await c.get("/v1/job/x", headers=h(token))).status_code == 401
        assert (await c.post("/v1/auth/grant", headers=h(token))).status_code == 400
        async with websockets.connect(url(srv.ws), subprotocols=["bearer", token]) as ws:
            assert ws.subprotocol == "bearer"
            await ws.send(json.dumps({"type": "CloseStream"}))
            assert json.loads(await ws.recv())["type"] == "Metadata"
        with pytest.raises(websockets.InvalidStatus) as err:  # single use
            async with websockets.connect(url(srv.ws, token=token)):
                pass
        assert err.value.response.status_code == 401
        short = (await c.post("/v1/auth/grant", headers=h(keys["a"]),
                              json={"ttl_seconds": 0.3})).json()["access_token"]
        await asyncio.sleep(0.6)
        with pytest.raises(websockets.InvalidStatus) as err:  # expired
            async with websockets.connect(url(srv.ws, token=short)):
                pass
        assert err.value.response.status_code == 401
        bad = await c.post("/v1/auth/grant", headers=h(keys["a"]), json={"ttl_seconds": -1})
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_PARAMETER"


def test_every_stored_object_of_another_key_is_404(keyed):
    srv, keys, _ = keyed
    a, b = h(keys["a"]), h(keys["b"])
    audio = wav_bytes((np.sin(np.arange(16000) / 5) * 3000).astype(np.int16))
    with httpx.Client(base_url=srv.http, timeout=30) as c:
        job = c.post("/v1/process/audio", content=audio, headers=a)
        assert job.status_code == 201, job.text
        job_id, conv = job.json()["jobId"], job.json()["conversationId"]
        coll = c.post("/v1/tag-collections", headers=a, json={"name": "mine", "tags": [
            {"name": "cooking", "kind": "topic", "description": "recipes and kitchens"}]})
        assert coll.status_code == 201, coll.text
        assert c.put("/v1/settings/webhook", headers=a,
                     json={"url": "http://127.0.0.1:9/hook"}).status_code == 200
        stream = c.post("/audio-stream/start", headers=a,
                        json={"audio_url": "http://127.0.0.1:9/none.mp3"})
        assert stream.status_code == 200, stream.text
        stream_id = stream.json()["data"]["task_id"]
        owned = [f"/v1/job/{job_id}", f"/v1/job/{job_id}/webhooks",
                 f"/v1/conversations/{conv}/messages", "/v1/tag-collections/mine",
                 f"/audio-stream/{stream_id}"]
        for path in owned:
            assert c.get(path, headers=a).status_code == 200, path
            assert c.get(path, headers=b).status_code == 404, path
        assert c.delete(f"/v1/conversations/{conv}", headers=b).status_code == 404
        assert c.get(f"/v1/conversations/{conv}/messages", headers=a).status_code == 200
        assert c.get("/v1/tag-collections", headers=b).json()["collections"] == []
        assert c.get("/v1/settings/webhook", headers=b).json()["url"] in (None, "")


def test_no_key_or_token_reaches_the_log(keyed):
    srv, keys, _ = keyed
    with httpx.Client(base_url=srv.http) as c:
        token = c.post("/v1/auth/grant", headers=h(keys["a"])).json()["access_token"]
        c.get(f"/v1/job/x?token={keys['b']}")
        c.get("/v1/job/x", headers=h(STATIC_KEY))
    asyncio.run(_open_with(srv, token))
    log = srv.log_path.read_text()
    assert "DEBUG" in log  # the most verbose level ran
    for secret in [*keys.values(), STATIC_KEY, token]:
        assert secret not in log


async def _open_with(srv, token: str) -> None:  # noqa: ANN001
    async with websockets.connect(url(srv.ws, token=token)) as ws:
        await ws.send(json.dumps({"type": "CloseStream"}))
        await ws.recv()


def test_the_seeds_header_forms_and_paths_work_with_keys(keyed):
    """A hosted-API user changes only the host: seed 004 and 002 send the bare key in
    Authorization, 003 documents x-api-key, and 004's base path is /serve/api/v2."""
    srv, keys, _ = keyed
    with httpx.Client(base_url=srv.http) as c:
        for headers in ({"Authorization": keys["a"]}, {"x-api-key": keys["a"]},
                        {"Authorization": f"Bearer {keys['a']}"}):
            assert c.get("/v1/job/x", headers=headers).status_code == 404, headers
            assert c.get("/serve/api/v2/audio-stream/x", headers=headers).status_code == 404
            assert c.get("/audio-stream/x", headers=headers).status_code == 404
        for headers in ({"Authorization": "em_wrong"}, {"x-api-key": "em_wrong"},
                        {"Authorization": f"Basic {keys['a']}"}, {}):
            assert c.get("/serve/api/v2/audio-stream/x", headers=headers).status_code == 401
        # The seed's stop path, on the bare key: an unknown task is a 404, not a 401.
        r = c.post("/serve/api/v2/audio-stream/stop/nope", headers={"Authorization": keys["a"]})
        assert r.status_code == 404, r.text
        listed = c.get("/serve/api/v2/audio-stream", headers={"Authorization": keys["a"]})
        assert listed.status_code == 200 and listed.json() == c.get(
            "/audio-stream", headers=h(keys["a"])).json()
