"""One body, every ingest: the same speech with the same options through the live socket, a
WebRTC peer, a URL the server pulls, a stream job and a tagging session gives the same
finals, speakers, tags and summary (they are one live session, issue 21).

The socket and the URL pull hear the same samples, so they must agree exactly. WebRTC hears
the speech through Opus and a stream job decodes interims too (finals by agreement), so
their words may differ a little; the bounds say how little.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import numpy as np
import orjson
import pytest

from earmark_eval import wer
from tests.conftest import client_example, running_server, silence_pcm
from tests.e2e.client import stream
from tests.e2e.test_url_pull import pull
from tests.e2e.webhook_receiver import WebhookReceiver

webrtc_file = client_example("webrtc_file")

LINES = ("Chop the onions and fry them in olive oil until they are soft.",
         "Add the garlic, the tomatoes and a pinch of salt.",
         "Let the sauce simmer while the pasta cooks in boiling water.",
         "Serve it with fresh basil and grated cheese.")
TOPIC = "Food & Drink"
# The options every ingest is asked for, in each dialect's own words.
LIVE = {"interim_results": "false", "endpointing": "300", "diarize": "true",
        "summarize": "true", "punctuate": "true"}
JOB = {"speaker_labels": True, "summarization": True, "punctuate": True, "format_text": True}


@dataclass
class Heard:
    text: str = ""
    speakers: set[int | str] = field(default_factory=set)
    topics: list[str] = field(default_factory=list)
    summary: str = ""


def normal(text: str) -> str:
    return " ".join("".join(c for c in w.lower() if c.isalnum() or c == "'")
                    for w in text.split())


@pytest.fixture(scope="module")
def speech(speak, tmp_path_factory):
    parts = [silence_pcm(0.5)]
    for line in LINES:
        parts += [speak(line), silence_pcm(1.0)]
    pcm = np.concatenate(parts + [silence_pcm(2.0)])
    root = tmp_path_factory.mktemp("every_ingest")
    with wave.open(str(root / "speech.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.astype(np.int16).tobytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield pcm, root / "speech.wav", f"http://127.0.0.1:{httpd.server_address[1]}/speech.wav"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def srv():
    with running_server(url_allow_networks="127.0.0.0/8", webhook_retry_base_s="0.2",
                        stream_no_data_s="8") as s:
        yield s


def from_deepgram(messages: list[dict]) -> Heard:
    assert messages[-1]["type"] == "Metadata", [m["type"] for m in messages]
    finals = [m for m in messages if m.get("type") == "Results" and m["is_final"]]
    words = [w for m in finals for w in m["channel"]["alternatives"][0]["words"]]
    tags = [m for m in messages if m.get("type") == "Tags"]
    summary = [m for m in messages if m.get("type") == "Summary"]
    return Heard(
        text=" ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals),
        speakers={w["speaker"] for w in words},
        topics=[t["name"] for t in tags[-1]["tags"] if t["kind"] == "topic"] if tags else [],
        summary=summary[0]["summary"]["text"] if summary else "")


async def by_socket(srv, speech) -> Heard:  # noqa: ANN001
    s = await stream(srv.ws, speech[0], pace=4.0, **LIVE)
    assert s.close_code == 1000
    return from_deepgram(s.messages)


async def by_webrtc(srv, speech) -> Heard:  # noqa: ANN001
    return from_deepgram(await webrtc_file.stream_file(srv.http, str(speech[1]), params=LIVE))


async def by_url(srv, speech) -> Heard:  # noqa: ANN001
    messages, close_code = await pull(srv, speech[2], **LIVE)
    assert close_code == 1000
    return from_deepgram([m for m in messages if m.get("type") != "SourceStatus"])


async def by_stream_job(srv, speech) -> Heard:  # noqa: ANN001
    with WebhookReceiver() as receiver, httpx.Client(base_url=srv.http, timeout=30) as c:
        assert c.put("/v1/settings/webhook", json={"url": receiver.url}).status_code == 200
        r = c.post("/audio-stream/start", json={"audio_url": speech[2], **JOB})
        assert r.status_code == 200, r.text
        receiver.wait_for(lambda g: any(orjson.loads(x.body)["data"]["status"] != 0
                                        for x in g), 120)
        got = [orjson.loads(x.body)["data"] for x in receiver.accepted()]
    segments = [d["transcript"] for d in got
                if d.get("message_type") != "PartialTranscript" and d["transcript"]]
    words = [w for t in segments for w in t["words"]]
    return Heard(text=" ".join(w["text"] for w in words),
                 speakers={w["speaker"] for w in words},
                 summary=next((t["summary"] for t in reversed(segments) if t["summary"]), ""))


async def by_tag_session(srv, speech) -> Heard:  # noqa: ANN001
    with WebhookReceiver() as receiver, httpx.Client(base_url=srv.http, timeout=30) as c:
        r = c.post("/stream/tag", headers={"x-chatsight-api": "chatsightvoice"},
                   json={"url": speech[2], "convoId": f"every-{time.time_ns()}",
                         "webhook": receiver.url})
        assert r.status_code == 200, r.text
        convo = r.json()["convoId"]
        receiver.wait_for(lambda g: len(g) >= 1, timeout_s=120)
        state = c.get(f"/stream/tag/{convo}").json()
    assert state["state"] == "completed", state
    return Heard(text=state["transcript"], topics=[t for t in state["tags"].split(",") if t])


INGESTS: dict[str, Callable[..., Awaitable[Heard]]] = {
    "webrtc": by_webrtc, "url": by_url, "stream_job": by_stream_job,
    "tag_session": by_tag_session}


@pytest.fixture(scope="module")
def socket_heard(srv, speech) -> Heard:  # noqa: ANN001
    heard = asyncio.run(by_socket(srv, speech))
    assert wer([normal(" ".join(LINES))], [normal(heard.text)]) <= 0.15, heard.text
    assert heard.speakers == {0} and heard.topics[:1] == [TOPIC] and heard.summary, heard
    return heard


@pytest.mark.parametrize("ingest", list(INGESTS))
async def test_every_ingest_hears_what_the_socket_hears(srv, speech, socket_heard,
                                                        ingest) -> None:
    heard = await INGESTS[ingest](srv, speech)
    # Same samples and options: the same words. Opus, agreement, or a tagging session's own
    # endpointing (seed 000 takes no options): within a few words of 40.
    bound = 0.0 if ingest == "url" else 0.15 if ingest == "tag_session" else 0.1
    assert wer([normal(socket_heard.text)], [normal(heard.text)]) <= bound, \
        (socket_heard.text, heard.text)
    if ingest != "tag_session":  # a tagging session reports tags only
        assert len(heard.speakers) == len(socket_heard.speakers), heard.speakers
        assert wer([normal(socket_heard.summary)], [normal(heard.summary)]) <= 2 * bound, \
            (socket_heard.summary, heard.summary)
    if ingest != "stream_job":  # seed 004 has no tags (its topics are IAB categories)
        assert heard.topics[:1] == socket_heard.topics[:1], heard.topics
