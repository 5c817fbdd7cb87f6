"""The live socket end to end: a real server process, real model, espeak-ng speech."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

import httpx
import numpy as np
import pytest
import websockets

from earmark_eval import wer
from tests.conftest import running_server, silence_pcm
from tests.e2e.client import raw_session, stream, url

SENTENCE = "I would like to order a large pizza with extra cheese."
SECOND = "Thank you very much for your help with this project."


def check_results(session, audio_s: float) -> None:
    """Finals never overlap; word times monotonic and inside the audio sent."""
    last_end = 0.0
    last_word = 0.0
    for m in session.finals:
        assert m["start"] >= last_end - 1e-3
        last_end = m["start"] + m["duration"]
        assert last_end <= audio_s + 0.05
        for w in m["channel"]["alternatives"][0]["words"]:
            assert last_word - 1e-3 <= w["start"] <= w["end"] <= audio_s + 0.05
            assert m["start"] - 1e-3 <= w["start"] and w["end"] <= last_end + 1e-3
            last_word = w["end"]


async def test_spoken_sentences_give_interims_then_finals(server, speak):
    pcm = np.concatenate([silence_pcm(0.5), speak(SENTENCE), silence_pcm(1.2), speak(SECOND),
                          silence_pcm(1.2)])
    s = await stream(server.ws, pcm, pace=3.0, vad_events=True, punctuate=True)
    # Words are final while the sentence goes on (interims agree, short pauses), and each
    # sentence's 500 ms endpoint says speech_final: an empty final when nothing is left.
    said = [m for m in s.finals if m["channel"]["alternatives"][0]["words"]]
    ends = [i for i, m in enumerate(s.finals) if m["speech_final"]]
    assert len(said) >= 2 and len(ends) == 2, s.messages
    first_end = s.finals[ends[0]]["start"] + s.finals[ends[0]]["duration"]
    assert all(m["start"] >= first_end - 1e-3 for m in s.finals[ends[0] + 1 :])
    assert ends[-1] == len(s.finals) - 1
    assert wer([SENTENCE + " " + SECOND], [s.final_text]) < 0.3, s.final_text
    assert s.interims, "interim results while speaking"
    first_final = s.messages.index(s.finals[0])
    assert any(m in s.interims for m in s.messages[:first_final])
    assert len(s.of_type("SpeechStarted")) == 2
    meta = s.of_type("Metadata")
    assert len(meta) == 1 and s.messages[-1] is meta[0]
    assert meta[0]["duration"] == pytest.approx(len(pcm) / 16000, abs=0.05)
    assert s.close_code == 1000
    check_results(s, len(pcm) / 16000)
    words = s.finals[0]["channel"]["alternatives"][0]["words"]
    assert words[0]["punctuated_word"] and words[0]["word"] == words[0]["word"].lower()


@pytest.mark.parametrize("while_silent", ["keepalive", "nothing"])
async def test_a_client_that_stops_sending_still_gets_its_endpoint(server, speak, while_silent):
    """Push-to-talk, a muted microphone, a voice agent: the audio stops, the socket stays open.
    The session clock follows the wall clock, so the endpoint and UtteranceEnd still come."""
    pcm = np.concatenate([silence_pcm(0.3), speak(SENTENCE), silence_pcm(0.1)])
    data, step = pcm.tobytes(), 3200  # 100 ms frames, sent in real time
    got: list[tuple[float, dict]] = []
    async with websockets.connect(url(server.ws, interim_results=False, endpointing=300,
                                      utterance_end_ms=1000)) as ws:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(0, len(data), step):
            await ws.send(data[i : i + step])
            await asyncio.sleep(max(0.0, start + (i + step) / 32000 - loop.time()))
        stopped = loop.time()
        next_keepalive = stopped
        while loop.time() - stopped < 10 and not any(
                m["type"] == "UtteranceEnd" for _, m in got):
            if while_silent == "keepalive" and loop.time() >= next_keepalive:
                await ws.send(json.dumps({"type": "KeepAlive"}))
                next_keepalive += 1.0
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.1)
            except TimeoutError:
                continue
            got.append((loop.time() - stopped, json.loads(raw)))
        await ws.send(json.dumps({"type": "CloseStream"}))
        async for raw in ws:
            got.append((loop.time() - stopped, json.loads(raw)))
        assert ws.close_code == 1000
    finals = [(t, m) for t, m in got if m["type"] == "Results" and m["is_final"]]
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for _, m in finals)
    assert wer([SENTENCE], [text]) < 0.3, text
    endpoint = [t for t, m in finals if m["speech_final"]]
    ends = [t for t, m in got if m["type"] == "UtteranceEnd"]
    # Stall 0.5 s + endpointing 0.3 s + a decode; UtteranceEnd 1 s after the last word.
    assert endpoint and endpoint[0] < 3.0, finals
    assert ends and ends[0] < 4.0, got


async def test_finalize_flushes_without_waiting_for_silence(server, speak):
    s = await stream(server.ws, speak(SENTENCE), finalize=True, interim_results=False)
    # What a pause cut made final before the Finalize stays; the Finalize gets its own answer.
    assert [m["from_finalize"] for m in s.finals][-1:] == [True]
    assert sum(m["from_finalize"] for m in s.finals) == 1
    assert wer([SENTENCE], [s.final_text]) < 0.3


async def test_48k_stereo_float_is_resampled_and_mixed(server, speak):
    mono = np.concatenate([speak(SENTENCE), silence_pcm(1.0)]).astype(np.float32) / 32768
    import soxr

    up = soxr.resample(mono, 16000, 48000).astype("<f4")
    stereo = np.stack([up, up * 0.5], axis=1).reshape(-1)
    s = await stream(server.ws, stereo.tobytes(), encoding="f32", sample_rate=48000,
                     channels=2, interim_results=False)
    # stream() counts 2 bytes per sample; f32 frames are still whole samples (100 ms chunks)
    assert wer([SENTENCE], [s.final_text]) < 0.3, s.final_text


async def test_silence_and_noise_give_no_text(server):
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 0.02, 16000 * 4) * 32767).astype(np.int16)
    s = await stream(server.ws, np.concatenate([silence_pcm(3.0), noise]))
    assert s.final_text == "" and not any(
        m["channel"]["alternatives"][0]["transcript"] for m in s.results)
    assert s.close_code == 1000


async def test_keepalive_keeps_an_idle_socket_open_and_idle_one_is_closed():
    with running_server(idle_timeout_s="1.0") as srv:
        async with websockets.connect(url(srv.ws)) as ws:
            for _ in range(3):
                await asyncio.sleep(0.5)
                await ws.send(json.dumps({"type": "KeepAlive"}))
            await ws.send(json.dumps({"type": "CloseStream"}))
            messages = [json.loads(m) async for m in ws]
            assert messages[-1]["type"] == "Metadata" and ws.close_code == 1000
        s = await raw_session(srv.ws, [])
        assert s.messages[-1]["type"] == "Error" and s.messages[-1]["variant"] == "IDLE_TIMEOUT"
        assert s.close_code == 1008


@pytest.mark.parametrize(
    "query, param",
    [({"encoding": "mp3"}, "encoding"), ({"sample_rate": "96000"}, "sample_rate"),
     ({"nonsense": "1"}, "nonsense"), ({"language": "fr"}, "language"),
     ({"endpointing": "soon"}, "endpointing")],
)
async def test_bad_parameters_get_http_400_naming_the_parameter(server, query, param):
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(url(server.ws, **query)):
            pass
    response = err.value.response
    assert response.status_code == 400
    body = json.loads(response.body)
    assert body["code"] == "INVALID_PARAMETER" and body["param"] == param


@pytest.mark.parametrize(
    "frames, variant, code",
    [
        (["this is not json"], "BAD_MESSAGE", 1008),
        ([json.dumps({"type": "Dance"})], "BAD_MESSAGE", 1008),
        ([b"\x00\x01\x02"], "BAD_AUDIO", 1008),
        ([b"\x00" * ((1 << 20) + 2)], "FRAME_TOO_LARGE", 1009),
        ([b"\x00" * (10 << 20)], "FRAME_TOO_LARGE", 1009),  # was a bare 1009 (issue 27)
    ],
)
async def test_bad_frames_get_an_error_and_close_code(server, frames, variant, code):
    s = await raw_session(server.ws, frames)
    assert s.messages[-1]["type"] == "Error"
    assert s.messages[-1]["variant"] == variant and s.messages[-1]["description"]
    assert s.close_code == code


async def test_bad_session_and_vanishing_client_do_not_affect_another(server, speak):
    pcm = np.concatenate([speak(SENTENCE), silence_pcm(1.0)])
    good = asyncio.create_task(stream(server.ws, pcm, pace=2.0, interim_results=True))

    async def vanish() -> None:
        ws = await websockets.connect(url(server.ws))
        await ws.send(speak(SECOND)[: 16000 * 1].tobytes())  # mid-utterance
        await asyncio.sleep(0.3)
        ws.transport.abort()  # no close frame: the TCP connection just drops

    await asyncio.gather(vanish(), raw_session(server.ws, [b"\x01"]), vanish())
    s = await good
    assert wer([SENTENCE], [s.final_text]) < 0.3 and s.close_code == 1000
    for _ in range(50):  # the server let go of the dropped sessions
        with urllib.request.urlopen(f"{server.http}/readyz") as r:
            if json.loads(r.read())["sessions"] == 0:
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("dropped sessions were not released")


async def test_api_keys_in_every_documented_form(speak):
    with running_server(api_keys="k-one,k-two") as srv:
        with pytest.raises(websockets.InvalidStatus) as err:
            async with websockets.connect(url(srv.ws)):
                pass
        assert err.value.response.status_code == 401
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(url(srv.ws), additional_headers={
                    "Authorization": "Token wrong"}):
                pass
        pcm = np.concatenate([speak(SENTENCE), silence_pcm(1.0)])
        for headers in ({"Authorization": "Token k-one"}, {"Authorization": "Bearer k-two"}):
            s = await stream(srv.ws, pcm, headers=headers, interim_results=False)
            assert s.close_code == 1000 and s.final_text
        async with websockets.connect(url(srv.ws), subprotocols=["token", "k-one"]) as ws:
            assert ws.subprotocol == "token"
        async with websockets.connect(url(srv.ws, token="k-two")) as ws:
            await ws.send(json.dumps({"type": "CloseStream"}))
            assert json.loads(await ws.recv())["type"] == "Metadata"
        log = srv.log_path.read_text()
        assert "/v1/listen?" in log and "token=***" in log and "k-two" not in log


async def test_three_times_capacity_excess_refused_admitted_keep_their_own_results(speak):
    with running_server(max_sessions="2") as srv:
        sentences = [SENTENCE, SECOND]
        admitted = [
            asyncio.create_task(stream(srv.ws, np.concatenate(
                [silence_pcm(0.3), speak(text), silence_pcm(1.2)]), pace=2.0))
            for text in sentences
        ]
        await asyncio.sleep(0.5)  # both admitted sessions are connected
        # A full node says so to a load balancer's health check, and takes sessions again
        # once they end (checked below).
        full = httpx.get(f"{srv.http}/readyz", timeout=5)
        assert full.status_code == 503 and full.json()["status"] == "full", full.text
        refused = await asyncio.gather(*(raw_session(srv.ws, []) for _ in range(4)))
        for r in refused:
            assert r.messages[-1]["variant"] == "OVERLOADED" and r.close_code == 1013
        results = await asyncio.gather(*admitted)
        for text, r in zip(sentences, results, strict=True):  # no results mixed up
            assert r.close_code == 1000 and wer([text], [r.final_text]) < 0.3, r.final_text
        with urllib.request.urlopen(f"{srv.http}/metrics") as resp:
            assert "earmark_sessions_refused_total 4.0" in resp.read().decode()
        for _ in range(50):
            ready = httpx.get(f"{srv.http}/readyz", timeout=5)
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert ready.json()["status"] == "ready" and ready.json()["streams"] == 0


async def test_metrics_report_sessions_queues_batches_and_latency(server, speak):
    pcm = np.concatenate([speak(SECOND), silence_pcm(1.2)])
    s = await stream(server.ws, pcm, pace=3.0)
    assert s.close_code == 1000
    with urllib.request.urlopen(f"{server.http}/metrics") as resp:
        text = resp.read().decode()
    for name in ("earmark_sessions ", 'earmark_queue_depth{lane="final"}',
                 'earmark_queue_age_seconds{lane="partial"}', "earmark_batch_size_bucket",
                 "earmark_request_latency_seconds_bucket", "earmark_realtime_factor",
                 "earmark_capacity_sessions", "earmark_session_lag_max_seconds",
                 "earmark_inference_busy_seconds_total", "earmark_sessions_shedding_partials"):
        assert name in text, name
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line and not line.startswith("#")}
    assert values['earmark_requests_total{lane="final",outcome="ok"}'] >= 1
    assert values["earmark_audio_received_seconds_total"] >= len(pcm) / 16000 - 0.01
    assert values['earmark_decoded_audio_seconds_total{lane="partial"}'] > 0


async def test_deepgram_sdk_gets_interim_and_final_results(server, speak):
    from deepgram import AsyncDeepgramClient
    from deepgram.environment import DeepgramClientEnvironment
    from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results

    env = DeepgramClientEnvironment(base=server.http, production=server.ws, agent=server.ws,
                                    agent_rest=server.http)
    client = AsyncDeepgramClient(api_key="unused-on-loopback", environment=env)
    pcm = np.concatenate([speak(SENTENCE), silence_pcm(1.2)]).tobytes()
    results, metadata = [], []
    async with client.listen.v1.connect(model="nova-3", encoding="linear16",
                                        sample_rate="16000", interim_results="true",
                                        smart_format="true") as socket:
        async def send() -> None:
            for i in range(0, len(pcm), 3200):
                await socket.send_media(pcm[i : i + 3200])
                await asyncio.sleep(0.04)
            await socket.send_close_stream()

        sender = asyncio.create_task(send())
        async for message in socket:
            if isinstance(message, ListenV1Results):
                results.append(message)
            elif isinstance(message, ListenV1Metadata):
                metadata.append(message)
        await sender
    finals = [r for r in results if r.is_final]
    assert any(not r.is_final for r in results), "no interim results"
    assert finals and wer([SENTENCE], [" ".join(
        r.channel.alternatives[0].transcript for r in finals)]) < 0.3
    assert len(metadata) == 1


def test_refuses_to_serve_a_public_address_without_keys():
    proc = subprocess.run([sys.executable, "-m", "earmark", "serve", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "without API keys" in proc.stderr


def test_importing_the_app_loads_no_model_runtime():
    code = ("import sys, earmark.api.app, earmark.cli; "
            "print([m for m in ('torch', 'ctranslate2', 'onnxruntime', 'faster_whisper') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


async def test_sigterm_flushes_finals_and_metadata_before_closing(speak):
    import signal

    with running_server() as srv:
        async with websockets.connect(url(srv.ws, interim_results=False)) as ws:
            pcm = speak(SENTENCE)  # no trailing silence: no endpoint has fired yet
            for i in range(0, len(pcm), 1600):
                await ws.send(pcm[i : i + 1600].tobytes())
            await asyncio.sleep(0.5)  # the server has taken the audio
            srv.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # uvicorn's order: the server stops listening before its sessions drain.
            with pytest.raises(OSError):
                async with websockets.connect(url(srv.ws), open_timeout=5):
                    pass
            messages = []
            try:
                async for raw in ws:
                    messages.append(json.loads(raw))
            except websockets.ConnectionClosed:
                pass
            finals = [m for m in messages if m.get("type") == "Results" and m["is_final"]]
            text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals)
            assert wer([SENTENCE], [text]) < 0.3, messages
            assert messages[-1]["type"] == "Metadata"
            assert ws.close_code == 1012
        # uvicorn re-raises the signal it handled once shutdown is complete
        assert srv.proc.wait(30) in (0, -signal.SIGTERM)
