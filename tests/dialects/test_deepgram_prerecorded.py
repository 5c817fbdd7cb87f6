"""The pre-recorded dialect's parser and response shaping, on stored sentence records."""

from __future__ import annotations

import pytest

from earmark.dialects.deepgram_prerecorded import (
    PrerecordedOptions,
    parse_prerecorded_options,
    prerecorded_body,
)
from earmark.errors import InvalidParameter


def parse(query: str) -> PrerecordedOptions:
    from urllib.parse import parse_qsl

    return parse_prerecorded_options(parse_qsl(query), multilingual=False)


def record(text: str, start: float, *, channel: int = 1, speaker: int | None = None,
           gap: float = 0.3, **extra) -> dict:  # noqa: ANN003
    words, t = [], start
    for w in text.split():
        words.append([w, round(t, 3), round(t + gap, 3), 0.9])
        t += gap + 0.05
    return {"speaker": speaker, "channel": channel, "text": text, "start_s": words[0][1],
            "end_s": words[-1][2], "words": words, **extra}


def body(records: list[dict], options: PrerecordedOptions, channels: int = 1) -> dict:
    return prerecorded_body(request_id="r1", created=0.0, duration_s=30.0, channels=channels,
                            sha256="ab", model_name="tiny.en", records=records,
                            options=options)


def test_options_round_trip_through_the_job_store() -> None:
    options = parse("smart_format=true&diarize=true&utterances=true&utt_split=1.2&keyterm=Earmark"
                    "&keywords=Whisper:2&redact=pci&replace=foo:bar&callback=https://x.test/cb")
    assert options.keyterms == ("Earmark", "Whisper") and options.utt_split_s == 1.2
    assert PrerecordedOptions.from_json(options.to_json()) == options


@pytest.mark.parametrize(("query", "param"), [
    ("bogus=1", "bogus"),
    ("summarize=v3", "summarize"),
    ("topics=maybe", "topics"),
    ("intents=true", "intents"),
    ("detect_language=true", "detect_language"),
    ("language=de", "language"),  # an English-only model
    ("encoding=opus&sample_rate=16000", "encoding"),
    ("encoding=linear16", "sample_rate"),
    ("channels=2", "channels"),
    ("callback_method=put&callback=https://x.test", "callback_method"),
    ("utt_split=0", "utt_split"),
    ("punctuate=maybe", "punctuate"),
])
def test_bad_options_name_their_parameter(query: str, param: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse(query)
    assert err.value.param == param


def test_detect_language_needs_a_multilingual_model_and_no_language() -> None:
    from urllib.parse import parse_qsl

    def multi(query: str) -> PrerecordedOptions:
        return parse_prerecorded_options(parse_qsl(query), multilingual=True)

    options = multi("detect_language=true")
    assert options.detect_language and options.language == "auto"
    with pytest.raises(InvalidParameter) as err:
        multi("detect_language=true&language=de")
    assert err.value.param == "detect_language"
    # Each channel names the language most of its words were heard in.
    records = [record("Hola a todos.", 0.0, language="es", language_confidence=0.9),
               record("Buenos días, familia.", 1.0, language="es", language_confidence=0.7),
               record("Okay.", 2.0, language="en", language_confidence=0.6)]
    channel = body(records, options)["results"]["channels"][0]
    assert channel["detected_language"] == "es"
    assert channel["language_confidence"] == pytest.approx((3 * 0.9 + 3 * 0.7) / 6, abs=1e-3)
    assert "detected_language" not in body(records, PrerecordedOptions())["results"][
        "channels"][0]


def test_a_summary_goes_in_results_when_asked() -> None:
    records = [record("Hello there.", 0.0), record("How are you?", 1.0)]
    options = parse("summarize=v2")
    assert body([], options)["results"]["summary"] == {"result": "no speech", "short": ""}
    assert "summary" not in body(records, PrerecordedOptions())["results"]
    out = prerecorded_body(request_id="r1", created=0.0, duration_s=3.0, channels=1,
                           sha256="ab", model_name="tiny.en", records=records,
                           options=options, summary="How are you?")
    assert out["results"]["summary"] == {"result": "success", "short": "How are you?"}
    assert "summary_info" in out["metadata"] and not parse("summarize=false").summarize


def test_features_turned_off_are_fine() -> None:
    assert parse("summarize=false&topics=false&model=nova-3&tier=enhanced") == PrerecordedOptions()


def test_words_utterances_and_paragraphs() -> None:
    records = [record("Hello there.", 0.5, speaker=0), record("How are you?", 1.3, speaker=0),
               record("Fine, thanks.", 4.0, speaker=1)]
    out = body(records, parse("punctuate=true&diarize=true&utterances=true&paragraphs=true"))
    alt = out["results"]["channels"][0]["alternatives"][0]
    assert alt["transcript"] == "Hello there. How are you? Fine, thanks."
    assert [w["word"] for w in alt["words"]][:2] == ["hello", "there"]
    assert alt["words"][0]["punctuated_word"] == "Hello" and alt["words"][-1]["speaker"] == 1
    utterances = out["results"]["utterances"]
    # 0.5-1.15 and 1.3-... are one utterance (gap < 0.8 s); speaker 1 starts another
    assert [u["speaker"] for u in utterances] == [0, 1]
    assert utterances[0]["transcript"] == "Hello there. How are you?"
    assert len({u["id"] for u in utterances}) == 2
    paragraphs = alt["paragraphs"]
    assert [len(p["sentences"]) for p in paragraphs["paragraphs"]] == [2, 1]
    assert paragraphs["transcript"] == ("\nSpeaker 0: Hello there. How are you?"
                                        "\n\nSpeaker 1: Fine, thanks.")
    meta = out["metadata"]
    assert meta["channels"] == 1 and meta["duration"] == 30.0 and meta["request_id"] == "r1"
    assert meta["models"] == list(meta["model_info"])


def test_without_punctuate_the_transcript_is_bare_words() -> None:
    out = body([record("Hello there.", 0.0)], PrerecordedOptions())
    alt = out["results"]["channels"][0]["alternatives"][0]
    assert alt["transcript"] == "hello there" and "punctuated_word" not in alt["words"][0]
    assert "utterances" not in out["results"] and "paragraphs" not in alt


def test_multichannel_gives_one_channel_each_and_utterances_name_it() -> None:
    records = [record("Left side.", 0.0, channel=1), record("Right side.", 0.2, channel=2)]
    out = body(records, parse("multichannel=true&utterances=true"), channels=2)
    texts = [c["alternatives"][0]["transcript"] for c in out["results"]["channels"]]
    assert texts == ["left side", "right side"] and out["metadata"]["channels"] == 2
    assert [u["channel"] for u in out["results"]["utterances"]] == [0, 1]
    mixed = body(records, PrerecordedOptions(), channels=2)
    assert len(mixed["results"]["channels"]) == 1 and mixed["metadata"]["channels"] == 1


def test_entities_index_the_channels_words_and_sentiment_averages() -> None:
    first = record("I met John Smith.", 0.0, sentiment=["positive", 0.6],
                   entities=[["PERSON", "John Smith", 0.7, 1.45]])
    second = record("It was in Paris.", 3.0, sentiment=["neutral", 0.0],
                    entities=[["GPE", "Paris", 4.05, 4.35]])
    out = body([first, second], parse("detect_entities=true&sentiment=true"))
    alt = out["results"]["channels"][0]["alternatives"][0]
    words = [w["word"] for w in alt["words"]]
    spans = [(e["label"], words[e["start_word"]:e["end_word"]]) for e in alt["entities"]]
    assert spans == [("PERSON", ["john", "smith"]), ("GPE", ["paris"])]
    assert alt["entities"][0]["raw_value"] == "john smith"
    sentiments = out["results"]["sentiments"]
    assert [s["start_word"] for s in sentiments["segments"]] == [0, 4]
    assert sentiments["average"] == {"sentiment": "positive", "sentiment_score": 0.3}
