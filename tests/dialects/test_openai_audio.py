"""The OpenAI audio dialect: form fields to options, stored sentences to response formats."""

from __future__ import annotations

import pytest

from earmark.dialects.openai_audio import parse_form, render, srt, vtt
from earmark.errors import InvalidParameter

RECORDS = [
    {"text": "Hello there.", "start_s": 0.5, "end_s": 1.25, "speaker": None, "channel": 1,
     "words": [["Hello", 0.5, 0.8, 0.9], ["there.", 0.8, 1.25, 0.8]]},
    {"text": " ", "start_s": 2.0, "end_s": 2.1, "speaker": None, "channel": 1, "words": []},
    {"text": "Bye.", "start_s": 3661.0, "end_s": 3661.5, "speaker": None, "channel": 1,
     "words": [["Bye.", 3661.0, 3661.5, 0.99]]},
]


def test_defaults_and_granularities() -> None:
    o = parse_form([("model", "whisper-1")], task="transcribe", multilingual=False)
    assert (o.response_format, o.language, o.words, o.segments) == ("json", None, False, True)
    o = parse_form([("model", "m"), ("response_format", "verbose_json"),
                    ("timestamp_granularities[]", "word"), ("temperature", "0"),
                    ("chunking_strategy", "auto")], task="transcribe", multilingual=False)
    assert (o.words, o.segments) == (True, False)


@pytest.mark.parametrize(("fields", "param"), [
    ([], "model"),
    ([("model", "m"), ("response_format", "diarized_json")], "response_format"),
    ([("model", "m"), ("temperature", "0.2")], "temperature"),
    ([("model", "m"), ("temperature", "hot")], "temperature"),
    ([("model", "m"), ("language", "fr")], "language"),
    ([("model", "m"), ("language", "english")], "language"),
    ([("model", "m"), ("timestamp_granularities[]", "word")], "timestamp_granularities[]"),
    ([("model", "m"), ("stream", "true")], "stream"),
    ([("model", "m"), ("include[]", "logprobs")], "include[]"),
    ([("model", "m"), ("model", "n")], "model"),
])
def test_what_cannot_be_honoured_names_its_field(fields, param) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_form(fields, task="transcribe", multilingual=False)
    assert caught.value.param == param


def test_a_multilingual_model_takes_other_languages() -> None:
    o = parse_form([("model", "m"), ("language", "FR")], task="transcribe", multilingual=True)
    assert o.language == "fr"


def test_subtitles_skip_empty_sentences_and_count_hours() -> None:
    assert srt(RECORDS) == ("1\n00:00:00,500 --> 00:00:01,250\nHello there.\n\n"
                            "2\n01:01:01,000 --> 01:01:01,500\nBye.\n\n")
    assert vtt(RECORDS).startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.250\nHello there.\n\n")


def test_json_and_verbose_json() -> None:
    o = parse_form([("model", "m")], task="transcribe", multilingual=False)
    body, media = render(RECORDS, o, 3662.0, "en")
    assert media == "application/json"
    assert body == {"text": "Hello there. Bye.", "usage": {"type": "duration", "seconds": 3662}}
    o = parse_form([("model", "m"), ("response_format", "verbose_json"),
                    ("timestamp_granularities[]", "word"),
                    ("timestamp_granularities[]", "segment")],
                   task="transcribe", multilingual=False)
    body, _ = render(RECORDS, o, 3662.0, "en")
    assert isinstance(body, dict)
    assert body["language"] == "english" and body["text"] == "Hello there. Bye."
    assert [s["text"] for s in body["segments"]] == [" Hello there.", " Bye."]
    assert body["segments"][0]["avg_logprob"] < 0 < body["segments"][0]["compression_ratio"]
    assert body["words"][1] == {"word": "there", "start": 0.8, "end": 1.25}
    text, media = render(RECORDS, parse_form([("model", "m"), ("response_format", "text")],
                                             task="transcribe", multilingual=False), 9, "en")
    assert (text, media) == ("Hello there. Bye.\n", "text/plain; charset=utf-8")
