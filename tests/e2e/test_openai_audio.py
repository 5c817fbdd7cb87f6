"""OpenAI's audio API (``/v1/audio/transcriptions``, ``/v1/models``) through the official
``openai`` SDK, with only its base URL changed."""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
import openai
import pytest

from earmark_eval import wer
from tests.conftest import silence_pcm
from tests.e2e.client import wav_bytes

FIRST = "Good morning everyone. Today we will talk about the weather."
SECOND = "My name is John Smith and I live in London. I love this city."
SAID = f"{FIRST} {SECOND}"


@pytest.fixture(scope="module")
def clip(speak) -> bytes:
    return wav_bytes(np.concatenate([silence_pcm(0.3), speak(FIRST), silence_pcm(1.5),
                                     speak(SECOND), silence_pcm(0.5)]))


@pytest.fixture()
def client(server):  # noqa: ANN201
    with openai.OpenAI(api_key="unused-on-loopback", base_url=f"{server.http}/v1",
                       timeout=120, max_retries=0) as c:
        yield c


def _file(clip: bytes) -> tuple[str, io.BytesIO, str]:
    return ("talk.wav", io.BytesIO(clip), "audio/wav")


def test_json_text_is_the_same_transcript_as_deepgram_prerecorded(client, server, clip):
    got = client.audio.transcriptions.create(model="whisper-1", file=_file(clip))
    assert wer([SAID], [got.text]) <= 0.15, got.text
    assert got.usage is not None and got.usage.type == "duration" and got.usage.seconds >= 8
    deepgram = httpx.post(f"{server.http}/v1/listen?punctuate=true", content=clip,
                          timeout=120).json()
    dg_text = deepgram["results"]["channels"][0]["alternatives"][0]["transcript"]
    assert abs(wer([SAID], [got.text]) - wer([SAID], [dg_text])) <= 0.01, (got.text, dg_text)


def test_verbose_json_has_segments_and_word_times(client, clip):
    got = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=_file(clip), response_format="verbose_json",
        timestamp_granularities=["word", "segment"])
    assert got.language == "english" and 9 < got.duration < 11
    assert got.words and got.segments
    starts = [w.start for w in got.words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in got.words)
    assert got.words[-1].end <= got.duration
    assert wer([SAID], [" ".join(w.word for w in got.words)]) <= 0.15
    assert " ".join(s.text.strip() for s in got.segments) == got.text
    # the two sentences lie 1.5 s apart: the second starts after the first one's words
    london = next(w for w in got.words if w.word.lower().startswith("london"))
    weather = next(w for w in got.words if w.word.lower().startswith("weather"))
    assert london.start > weather.end + 1.0
    words_only = client.audio.transcriptions.create(
        model="whisper-1", file=_file(clip), response_format="verbose_json",
        timestamp_granularities=["word"])
    assert words_only.words and words_only.segments is None


def test_text_srt_and_vtt(client, clip):
    text = client.audio.transcriptions.create(model="whisper-1", file=_file(clip),
                                              response_format="text")
    assert isinstance(text, str) and wer([SAID], [text]) <= 0.15
    srt = client.audio.transcriptions.create(model="whisper-1", file=_file(clip),
                                             response_format="srt")
    cues = re.findall(r"(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+)\n", srt)
    assert len(cues) >= 2 and [c[0] for c in cues] == [str(i) for i in range(1, len(cues) + 1)]
    assert wer([SAID], [" ".join(c[3] for c in cues)]) <= 0.15
    vtt = client.audio.transcriptions.create(model="whisper-1", file=_file(clip),
                                             response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n")
    assert len(re.findall(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n", vtt)) == len(cues)


def test_what_cannot_be_honoured_is_refused_in_openai_shape(client, server, clip):
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=_file(clip),
                                           temperature=0.4)
    assert caught.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=_file(clip), language="de")
    assert caught.value.body["param"] == "language"
    # (the SDK marks audio.translations deprecated, so this one goes by hand)
    raw = httpx.post(f"{server.http}/v1/audio/translations", timeout=30,
                     files={"file": ("a.wav", clip)}, data={"model": "whisper-1"})
    assert raw.status_code == 400 and "English-only" in raw.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=_file(b"not audio at all"))
    assert caught.value.status_code == 400
    raw = httpx.post(f"{server.http}/v1/audio/transcriptions", timeout=30,
                     files={"file": ("a.wav", clip)}, data={"model": "x", "colour": "red"})
    assert raw.status_code == 400
    assert raw.json()["error"]["param"] == "colour"
    assert raw.json()["error"]["type"] == "invalid_request_error"


def test_models_lists_the_loaded_model_and_the_names_it_answers(client):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "tiny.en" and "whisper-1" in ids
    assert client.models.retrieve("whisper-1").owned_by == "earmark"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("dall-e-3")
