"""``POST /v2/stream`` (synchronous short audio) against a real server."""

from __future__ import annotations

import base64
import io
import wave

import httpx
import numpy as np
import pytest

from earmark_eval import read_mono_16k, wer
from tests.conftest import evaldata_items, silence_pcm

TEXT = "Please call me back after lunch tomorrow."


def wav_bytes(pcm: np.ndarray, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_wav_and_raw_pcm_round_trip(server, speak):
    pcm = np.concatenate([silence_pcm(0.3), speak(TEXT), silence_pcm(0.5)])
    stereo_44k = np.repeat(
        (np.interp(np.arange(0, len(pcm), 16000 / 44100), np.arange(len(pcm)), pcm))
        .astype(np.int16), 2)
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        # Headerless PCM is 8 kHz unless sample_rate says otherwise (the hosted API's format).
        pcm_8k = np.interp(np.arange(0, len(pcm), 2), np.arange(len(pcm)), pcm).astype(np.int16)
        for audio, extra in ((wav_bytes(pcm), {}), (pcm.tobytes(), {"sample_rate": 16000}),
                             (pcm_8k.tobytes(), {}), (wav_bytes(stereo_44k, 44100, 2), {})):
            r = await http.post("/v2/stream", json={"audio_data": b64(audio), **extra})
            assert r.status_code == 200, r.text
            body = r.json()
            assert set(body) == {"id", "status", "confidence", "text", "words", "created"}
            assert body["status"] == "completed" and 0 < body["confidence"] <= 1
            assert wer([TEXT], [body["text"]]) <= 0.3, body["text"]
            duration_ms = len(pcm) / 16
            starts = [w["start"] for w in body["words"]]
            assert starts == sorted(starts)
            for w in body["words"]:
                assert isinstance(w["start"], int) and isinstance(w["end"], int)
                assert 0 <= w["start"] <= w["end"] <= duration_ms + 50
                assert set(w) == {"text", "start", "end", "confidence"}


async def test_silence_gives_empty_text(server):
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        r = await http.post("/v2/stream", json={"audio_data": b64(wav_bytes(silence_pcm(3)))})
    assert r.status_code == 200 and r.json()["text"] == "" and r.json()["words"] == []


async def test_malformed_requests_get_400_never_500(server):
    long = wav_bytes(silence_pcm(16))
    cases = [
        ({}, "audio_data"),
        ({"audio_data": ""}, "audio_data"),
        ({"audio_data": "not base64!!"}, "audio_data"),
        ({"audio_data": b64(long)}, "audio_data"),
        ({"audio_data": b64(b"\x01\x02\x03")}, "audio_data"),
        ({"audio_data": b64(wav_bytes(np.zeros(1600, np.uint8), width=1))}, "audio_data"),
        ({"audio_data": b64(b"RIFF\x00\x00\x00\x00WAVEjunk")}, "audio_data"),
        # RIFF, but not a WAV (an AVI): was read as PCM and answered 200 with no text.
        ({"audio_data": b64(b"RIFF\x24\x00\x00\x00AVI LIST" + bytes(400))}, "audio_data"),
        ({"audio_data": b64(bytes(3200)), "sample_rate": 4000}, "sample_rate"),
        ({"audio_data": 42}, "audio_data"),
    ]
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        for body, param in cases:
            r = await http.post("/v2/stream", json=body)
            assert r.status_code == 400, (body if len(str(body)) < 200 else "long", r.text)
            assert r.json()["param"] == param and r.json()["message"], r.json()
        r = await http.post("/v2/stream", content=b"{oops",
                            headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"


async def test_unknown_routes_and_methods_get_the_documented_error_shape(server):
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        r = await http.get("/v9/nothing-here")
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND", r.text
        assert "/v9/nothing-here" in r.json()["message"] and "detail" not in r.json()
        r = await http.delete("/v2/stream")
        assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED", r.text
        assert "POST" in r.headers["allow"]
        r = await http.get("/static/no-such-file.js")
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND", r.text


@pytest.mark.evaldata
async def test_sync_wer_on_real_speech(server):
    items = [it for it in evaldata_items("short_read") if it.reference]
    items = [it for it in items if len(read_mono_16k(it.path)) <= 15 * 16000]
    texts = []
    async with httpx.AsyncClient(base_url=server.http, timeout=120) as http:
        for it in items:
            audio = read_mono_16k(it.path)
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            r = await http.post("/v2/stream", json={"audio_data": b64(wav_bytes(pcm))})
            assert r.status_code == 200, r.text
            texts.append(r.json()["text"])
    score = wer([it.reference for it in items], texts)
    print(f"\n/v2/stream on {len(items)} short_read items: WER {score:.3f}")
    assert score <= 0.08  # offline faster-whisper on the same items: ~0.061
