"""Injected faults: a full disk, a client that sends faster than real time, a client that
stops reading, a source that sends garbage, a webhook receiver down for an hour."""

from __future__ import annotations

import asyncio
import http.server
import os
import threading

import httpx
import numpy as np
import pytest

from earmark.config import Settings
from earmark.core.jobs import gives_up, retry_delay_s
from earmark.errors import SlowConsumer
from earmark.ingest.url_source import SourceConfig, UrlSource
from earmark.live.outbox import Outbox
from tests.conftest import running_server, silence_pcm
from tests.e2e.client import stream, wait_job, wav_bytes

SENTENCES = ["The weather today is sunny with a light breeze from the west.",
             "Please send the quarterly report to the finance team by Friday.",
             "My favourite book is a long story about a lighthouse keeper.",
             "We will meet at the train station at seven in the evening."]


def test_full_disk_gives_507_and_the_server_keeps_working(speak):
    with running_server(file_size_limit=6 << 20, max_upload_bytes=str(64 << 20)) as srv:
        with httpx.Client(base_url=srv.http, timeout=60) as c:
            big = c.post("/v1/process/audio", content=os.urandom(10 << 20))
            assert big.status_code == 507, big.text
            assert big.json()["code"] == "STORAGE_FULL"
            assert not list((srv.data_dir / "audio").glob("*")), "no partial upload is left"
            assert c.get("/readyz").status_code == 200
            small = c.post("/v1/process/audio", content=wav_bytes(
                np.concatenate([speak(SENTENCES[0]), silence_pcm(0.5)])))
            assert small.status_code == 201, small.text
            job = wait_job(c, small.json()["jobId"])
            assert job["status"] == "completed"
        s = asyncio.run(stream(srv.ws, np.concatenate([speak(SENTENCES[1]), silence_pcm(1)]),
                               interim_results=False))
        assert s.close_code == 1000 and "report" in s.final_text.lower()


async def test_a_client_faster_than_real_time_loses_no_final(server, speak):
    pcm = np.concatenate([np.concatenate([speak(t), silence_pcm(1.0)]) for t in SENTENCES * 2])
    s = await stream(server.ws, pcm, chunk_ms=250, pace=0)  # ~30 s sent in well under 1 s
    assert s.close_code == 1000
    text = s.final_text.lower()
    for key in ("sunny", "finance", "lighthouse", "station"):
        assert text.count(key) == 2, (key, text)
    ends = [r["start"] + r["duration"] for r in s.finals]
    assert ends == sorted(ends) and ends[-1] <= len(pcm) / 16000 + 0.01


async def test_a_client_that_stops_reading_is_closed_not_buffered_forever():
    outbox = Outbox(max_messages=4)
    for k in range(20):  # interims collapse into one slot
        outbox.put(b"interim %d" % k, interim=True)
    for k in range(3):
        outbox.put(b"final %d" % k)
    with pytest.raises(SlowConsumer) as err:
        outbox.put(b"final 3")
    assert err.value.close_code == 1008
    # What was queued is intact and in order: finals are never dropped to make room.
    got = [await outbox.get() for _ in range(4)]
    assert got == [b"interim 19", b"final 0", b"final 1", b"final 2"]


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = os.urandom(256 * 1024)
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


async def test_a_source_that_sends_garbage_fails_with_a_reason():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = UrlSource(f"http://127.0.0.1:{server.server_port}/live.mp3", SourceConfig(
            headers={}, reconnect_budget_s=1.0))
        items = await asyncio.wait_for(_collect(source), 60)
    finally:
        server.shutdown()
        server.server_close()
    statuses = [i for i in items if not isinstance(i, bytes)]
    assert statuses and statuses[-1].state in ("failed", "ended"), statuses
    assert statuses[-1].reason
    # Whatever PCM came out of the noise is bounded by what was sent.
    assert sum(len(i) for i in items if isinstance(i, bytes)) < 60 * 16000 * 2


async def _collect(source: UrlSource) -> list:
    return [item async for item in source.chunks()]


def test_webhooks_outlast_a_receiver_down_for_an_hour():
    s = Settings()
    waited, attempts = 0.0, 0
    while not gives_up(waited, window_s=s.webhook_retry_window_h * 3600):
        attempts += 1
        delay = retry_delay_s(attempts, base_s=s.webhook_retry_base_s, cap_s=s.webhook_retry_cap_s)
        assert delay <= s.webhook_retry_cap_s
        waited += delay
        if waited >= 3600:
            break
    assert waited >= 3600, "still retrying after an hour down"
    # ...and the receiver is not hammered: at most one try per 10 minutes once backed off.
    assert attempts < 20


def test_a_full_database_is_507_without_an_asgi_traceback():
    examples = [f"example sentence number {i} about the weather " + "x" * 250 for i in range(20)]
    tags = [{"name": f"tag{k}", "kind": "topic", "description": "weather talk " * 20,
             "examples": examples} for k in range(20)]
    with running_server(file_size_limit=1 << 20, max_tag_collections="500") as srv:
        with httpx.Client(base_url=srv.http, timeout=60) as c:
            codes = []
            for n in range(40):
                r = c.post("/v1/tag-collections", json={"name": f"c{n}", "tags": tags})
                codes.append(r.status_code)
                if r.status_code == 507:
                    assert r.json()["code"] == "STORAGE_FULL"
                    break
            assert codes[-1] == 507, codes
            assert c.get("/readyz").status_code == 200
        log = srv.log_path.read_text()
    assert "Exception in ASGI application" not in log
    assert "Traceback" not in log
