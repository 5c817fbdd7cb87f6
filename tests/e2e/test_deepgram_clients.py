"""Deepgram's pre-recorded API (``POST /v1/listen``) through the official Python SDK, and the
server-wide socket defaults (``--listen-defaults``) that framework users rely on."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import orjson
import pytest
import websockets

from earmark_eval import wer
from tests.conftest import running_server, silence_pcm
from tests.e2e.client import wav_bytes
from tests.e2e.webhook_receiver import WebhookReceiver

FIRST = "Good morning everyone. Today we will talk about the weather."
SECOND = "My name is John Smith and I live in London. I love this city."


@pytest.fixture(scope="module")
def dg_server():
    # Tags off by default (a framework cannot add tagging=false to its URL); loopback
    # callbacks and URLs allowed for the test's own receivers.
    with running_server(url_allow_networks="127.0.0.0/8", webhook_retry_base_s="0.2",
                        listen_defaults="tagging=false&endpointing=300") as server:
        yield server


@pytest.fixture(scope="module")
def clip(speak) -> np.ndarray:
    return np.concatenate([silence_pcm(0.3), speak(FIRST), silence_pcm(1.5), speak(SECOND),
                           silence_pcm(0.5)])


@pytest.fixture()
def sdk(dg_server):  # noqa: ANN201
    """The official SDK's client, with only its base URL changed."""
    from deepgram import DeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    env = DeepgramClientEnvironment(base=dg_server.http, production=dg_server.ws,
                                    agent=dg_server.ws, agent_rest=dg_server.http)
    with httpx.Client(timeout=120) as http:
        yield DeepgramClient(api_key="unused-on-loopback", environment=env, httpx_client=http)


@pytest.fixture()
def file_server(clip) -> Iterator[str]:
    """Serves the clip as a WAV file over loopback HTTP (what transcribe_url fetches)."""
    body = wav_bytes(clip)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/moved.wav":
                self.send_response(302)
                self.send_header("Location", "/talk.wav")
                self.end_headers()
                return
            if self.path != "/talk.wav":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_sdk_transcribes_a_file_with_utterances_and_paragraphs(sdk, dg_server, clip) -> None:
    from deepgram.types.listen_v1response import ListenV1Response

    body = wav_bytes(clip)
    response = sdk.listen.v1.media.transcribe_file(
        request=body, model="nova-3", smart_format=True, utterances=True, paragraphs=True,
        keyterm=["Smith"], summarize="v2")
    assert isinstance(response, ListenV1Response)
    meta = response.metadata
    assert abs(meta.duration - len(clip) / 16000) < 0.05 and meta.channels == 1
    assert meta.sha256 == hashlib.sha256(body).hexdigest()
    alternative = response.results.channels[0].alternatives[0]
    assert wer([f"{FIRST} {SECOND}"], [alternative.transcript]) < 0.2, alternative.transcript
    words = alternative.words
    assert words and all(0 <= w.start <= w.end <= meta.duration for w in words)
    assert all(a.end <= b.start + 1e-3 for a, b in zip(words, words[1:], strict=False))
    # the 1.5 s pause splits utterances (utt_split 0.8 s) and paragraphs
    utterances = response.results.utterances
    assert utterances is not None and len(utterances) >= 2
    assert utterances[0].end < 0.3 + len(clip) / 16000 / 2 < utterances[-1].start + 3
    assert sum(len(u.words) for u in utterances) == len(words)
    paragraphs = alternative.paragraphs
    assert paragraphs is not None and len(paragraphs.paragraphs) >= 2
    assert paragraphs.transcript.startswith("\n") and "\n\n" in paragraphs.transcript
    summary = response.results.summary  # extractive: whole sentences of the transcript
    assert summary is not None and summary.result == "success" and summary.short
    assert all(w in alternative.transcript for w in summary.short.split()), summary.short


def test_the_sdk_gets_topics_per_passage(sdk, dg_server, speak) -> None:
    match = ["The football match ended with a late goal from the young striker.",
             "Thousands of fans cheered in the stadium as the team lifted the trophy.",
             "The coach praised the defence and said the players trained hard all season."]
    pcm = np.concatenate([np.concatenate([speak(s), silence_pcm(0.6)]) for s in match])
    response = sdk.listen.v1.media.transcribe_file(request=wav_bytes(pcm), topics=True)
    words = response.results.channels[0].alternatives[0].words
    segments = response.results.topics.segments
    assert segments, response.results.topics
    assert all(0 <= s.start_word <= s.end_word < len(words) for s in segments)
    found = [t.topic for s in segments for t in s.topics]
    assert {"Soccer", "Sports"} & set(found), found  # IAB Content Taxonomy, as the socket
    assert all(0 < t.confidence_score <= 1 for s in segments for t in s.topics)


def test_the_sdk_transcribes_a_url_and_follows_its_redirect(sdk, file_server) -> None:
    response = sdk.listen.v1.media.transcribe_url(
        url=f"{file_server}/moved.wav", punctuate=True)
    alternative = response.results.channels[0].alternatives[0]
    assert wer([f"{FIRST} {SECOND}"], [alternative.transcript]) < 0.2, alternative.transcript
    assert alternative.transcript[0].isupper()  # punctuated words


def test_entities_sentiment_and_redaction_on_a_file(dg_server, clip) -> None:
    r = httpx.post(f"{dg_server.http}/v1/listen", content=wav_bytes(clip), timeout=120,
                   params={"detect_entities": "true", "sentiment": "true", "redact": "pii",
                           "punctuate": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert "Smith" not in alternative["transcript"], alternative["transcript"]
    assert "[PERSON_NAME]" in alternative["transcript"]
    words = alternative["words"]
    assert alternative["entities"], alternative
    for e in alternative["entities"]:
        assert 0 <= e["start_word"] < e["end_word"] <= len(words)
        assert set(e) == {"label", "value", "raw_value", "confidence", "start_word",
                          "end_word"}
    assert any(e["label"] == "PERSON" and e["value"] == "[REDACTED]"
               for e in alternative["entities"])
    segments = body["results"]["sentiments"]["segments"]
    assert segments and segments[-1]["sentiment"] == "positive"
    assert body["results"]["sentiments"]["average"]["sentiment"] in ("positive", "neutral")


def test_headerless_pcm_and_the_documented_errors(dg_server, clip) -> None:
    url = f"{dg_server.http}/v1/listen"
    pcm = clip.astype("<i2").tobytes()
    r = httpx.post(url, content=pcm, params={"encoding": "linear16", "sample_rate": "16000"},
                   timeout=120)
    assert r.status_code == 200, r.text
    assert wer([f"{FIRST} {SECOND}"],
               [r.json()["results"]["channels"][0]["alternatives"][0]["transcript"]]) < 0.2

    def refused(status: int, param: str, **kwargs) -> dict:  # noqa: ANN003
        r = httpx.post(url, timeout=30, **kwargs)
        assert r.status_code == status, r.text
        body = r.json()
        assert set(body) >= {"err_code", "err_msg", "request_id"} and body["err_msg"], body
        assert body.get("param") == param, body
        return body

    refused(400, "bogus", content=pcm, params={"bogus": "1"})
    assert "not supported" in refused(400, "intents", content=pcm,
                                      params={"intents": "true"})["err_msg"]
    refused(400, "sample_rate", content=pcm, params={"encoding": "linear16"})
    refused(400, "url", json={"link": "x"})
    refused(400, "url", json={"url": "http://10.1.2.3/a.wav"})  # a private address
    refused(400, "callback", content=pcm, params={"callback": "ftp://example.com/x"})
    # not audio: the decoder says so, in the same shape
    bad = httpx.post(url, content=b"hello, this is not audio" * 100, timeout=60)
    assert bad.status_code == 400 and bad.json()["err_code"] == "BAD_AUDIO", bad.text


def test_a_callback_gets_the_transcript_signed(dg_server, clip) -> None:
    with WebhookReceiver() as receiver:
        r = httpx.post(f"{dg_server.http}/v1/listen", content=wav_bytes(clip), timeout=30,
                       params={"callback": f"{receiver.url}/dg", "utterances": "true",
                               "summarize": "v2"})
        assert r.status_code == 200, r.text
        request_id = r.json()["request_id"]
        got = receiver.wait_for(lambda rs: len(rs) >= 1, timeout_s=120)[0]
    body = orjson.loads(got.body)
    assert got.path == "/hook/dg" and body["metadata"]["request_id"] == request_id
    text = body["results"]["channels"][0]["alternatives"][0]["transcript"]
    assert wer([f"{FIRST} {SECOND}"], [text]) < 0.2 and body["results"]["utterances"]
    assert body["results"]["summary"]["result"] == "success"
    secret = httpx.get(f"{dg_server.http}/v1/webhooks/secret").json()["secret"]
    stamp = got.headers["Earmark-Timestamp"]
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + got.body,
                        hashlib.sha256).hexdigest()
    assert got.headers["Earmark-Signature"] == f"v1={expected}"


async def test_server_defaults_apply_until_the_client_overrides_them(dg_server, speak) -> None:
    """``--listen-defaults tagging=false``: no Tags by default; ``tagging=true`` brings them
    back for a client that asks."""
    raw = np.concatenate([speak(FIRST), silence_pcm(1.0)] * 2).astype("<i2").tobytes()

    async def kinds(query: str) -> list[str]:
        seen = []
        async with websockets.connect(f"{dg_server.ws}/v1/listen?{query}") as ws:
            for i in range(0, len(raw), 32000):  # 1 s at a time, faster than real time
                await ws.send(raw[i:i + 32000])
            await ws.send('{"type": "CloseStream"}')
            async for message in ws:
                seen.append(orjson.loads(message)["type"])
        return seen

    plain, tagged = await asyncio.gather(kinds("encoding=linear16&sample_rate=16000"),
                                         kinds("encoding=linear16&sample_rate=16000"
                                               "&tagging=true"))
    assert "Results" in plain and "Tags" not in plain, plain
    assert "Tags" in tagged, tagged


async def test_livekit_agents_plugin_streams_and_recognizes(dg_server, clip) -> None:
    """LiveKit Agents' Deepgram plugin, as an agent uses it: a stream of 20 ms frames with
    its defaults (endpointing 25 ms, VAD events, filler words...), a flush (Finalize) at
    the end of the user's turn, and ``recognize()`` on a buffer (the pre-recorded API)."""
    import aiohttp
    from livekit import rtc
    from livekit.agents import stt as agent_stt
    from livekit.plugins import deepgram as lk_deepgram

    reference = f"{FIRST} {SECOND}"
    frame_samples = 320
    async with aiohttp.ClientSession() as session:
        plugin = lk_deepgram.STT(base_url=f"{dg_server.http}/v1/listen", api_key="unused",
                                 http_session=session)
        whole = rtc.AudioFrame(data=clip.tobytes(), sample_rate=16000, num_channels=1,
                               samples_per_channel=len(clip))
        recognized = await plugin.recognize([whole])
        assert wer([reference], [recognized.alternatives[0].text]) < 0.2, recognized

        stream = plugin.stream()
        finals: list[agent_stt.SpeechEvent] = []
        kinds: list[agent_stt.SpeechEventType] = []

        async def read() -> None:
            async for event in stream:
                kinds.append(event.type)
                if event.type == agent_stt.SpeechEventType.FINAL_TRANSCRIPT:
                    finals.append(event)

        reader = asyncio.create_task(read())
        for i in range(0, len(clip) - frame_samples + 1, frame_samples):
            piece = clip[i:i + frame_samples]
            stream.push_frame(rtc.AudioFrame(data=piece.tobytes(), sample_rate=16000,
                                             num_channels=1, samples_per_channel=len(piece)))
            await asyncio.sleep(0.02)
        stream.flush()
        await asyncio.sleep(2.0)
        stream.end_input()
        await asyncio.wait_for(reader, 30)
        await stream.aclose()
        await plugin.aclose()
    text = " ".join(e.alternatives[0].text for e in finals)
    assert wer([reference], [text]) < 0.2, text
    words = [w for e in finals for w in (e.alternatives[0].words or [])]
    assert not words or all(w.start_time <= w.end_time for w in words)
    assert agent_stt.SpeechEventType.START_OF_SPEECH in kinds
    assert agent_stt.SpeechEventType.INTERIM_TRANSCRIPT in kinds
    assert agent_stt.SpeechEventType.END_OF_SPEECH in kinds


def test_the_prerecorded_client_example(dg_server, clip, tmp_path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    audio = tmp_path / "talk.wav"
    audio.write_bytes(wav_bytes(clip))
    run = subprocess.run([sys.executable, str(ROOT / "client_examples" /
                                              "deepgram_prerecorded.py"), str(audio),
                          "--url", dg_server.http], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) >= 2 and all("speaker" in line for line in lines), run.stdout
    said = " ".join(re.sub(r"^.*?speaker \d+  ", "", line) for line in lines)
    assert wer([f"{FIRST} {SECOND}"], [said]) < 0.2, run.stdout
