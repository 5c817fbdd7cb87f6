import orjson
import pytest

from earmark.core.events import SpeechStarted, Transcript, UtteranceEnd, Word
from earmark.core.text_options import TextOptions
from earmark.dialects.deepgram import (
    DeepgramEncoder,
    LiveOptions,
    parse_live_options,
)
from earmark.errors import InvalidParameter
from earmark.live.factory import LivePolicy, session_config


def parse(query: str, multilingual: bool = False) -> LiveOptions:
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    return parse_live_options(pairs, multilingual=multilingual)


def test_defaults():
    o = parse("")
    assert (o.encoding, o.sample_rate, o.channels) == ("linear16", 16000, 1)
    assert o.interim_results and o.endpointing_ms == 500 and o.utterance_end_ms is None


def test_sdk_style_query_is_accepted():
    o = parse("model=nova-3&encoding=linear16&sample_rate=48000&channels=2&interim_results=false"
              "&endpointing=300&utterance_end_ms=1000&vad_events=true&punctuate=true"
              "&smart_format=true&language=en-US&keyterm=Earmark&keywords=Whisper:2"
              "&keywords=CTranslate2&mip_opt_out=false&tag=demo")
    assert o.sample_rate == 48000 and o.channels == 2 and not o.interim_results
    assert o.endpointing_ms == 300 and o.utterance_end_ms == 1000 and o.vad_events
    assert o.keyterms == ("Earmark", "Whisper", "CTranslate2")
    assert o.hotwords == "Earmark, Whisper, CTranslate2"


def test_endpointing_false_and_f32():
    o = parse("endpointing=false&encoding=f32")
    assert o.endpointing_ms is None and o.encoding == "f32"
    assert session_config(o.spec(), LivePolicy()).speech_final is False


@pytest.mark.parametrize(
    "query, param",
    [
        ("bogus=1", "bogus"),
        ("encoding=opus", "encoding"),
        ("sample_rate=4000", "sample_rate"),
        ("sample_rate=abc", "sample_rate"),
        ("channels=0", "channels"),
        ("interim_results=maybe", "interim_results"),
        ("endpointing=-5", "endpointing"),
        ("utterance_end_ms=200", "utterance_end_ms"),
        ("language=de", "language"),
        ("language=../../etc", "language"),
        ("diarize=sometimes", "diarize"),
        ("diarize_speakers=2", "diarize_speakers"),
        ("diarize=true&diarize_speakers=11", "diarize_speakers"),
        ("multichannel=maybe", "multichannel"),
        ("intents=true", "intents"),
        ("custom_topic=sport", "custom_topic"),
        ("url=http://x/a.ts&multichannel=true&channels=2", "multichannel"),
        ("redact=passwords", "redact"),
        ("replace=nocolon", "replace"),
        ("sentiment=maybe", "sentiment"),
        ("sample_rate=8000&sample_rate=16000", "sample_rate"),
    ],
)
def test_bad_parameters_name_the_parameter(query, param):
    with pytest.raises(InvalidParameter) as err:
        parse(query)
    assert err.value.param == param
    assert err.value.http_status == 400


def test_text_options_parse():
    opts = parse("redact=pci&redact=ssn&replace=colour:color&replace=New York:NYC"
                 "&profanity_filter=true&sentiment=true&detect_entities=true").text
    assert opts.redact == {"card", "ssn"} and opts.profanity and opts.sentiment and opts.entities
    assert opts.replace == (("colour", "color"), ("new york", "NYC"))
    assert parse("redact=true").text.redact >= {"email", "phone", "card", "name"}
    assert not parse("redact=false").text.active


def test_other_languages_need_a_multilingual_model():
    assert parse("language=de", multilingual=True).language == "de"


def test_results_message_shape():
    enc = DeepgramEncoder(request_id="r1", model_name="tiny.en",
                          options=LiveOptions(punctuate=True))
    t = Transcript(16000, 48000, (Word("Hello,", 16000, 24000, 0.9),
                                  Word("World!", 24000, 40000, 0.7)),
                   is_final=True, speech_final=True)
    msg = orjson.loads(enc.encode(t))
    assert msg["type"] == "Results" and msg["is_final"] and msg["speech_final"]
    assert msg["start"] == 1.0 and msg["duration"] == 2.0 and msg["from_finalize"] is False
    alt = msg["channel"]["alternatives"][0]
    assert alt["transcript"] == "Hello, World!"
    assert alt["words"][0] == {"word": "hello", "start": 1.0, "end": 1.5, "confidence": 0.9,
                               "punctuated_word": "Hello,"}
    assert alt["confidence"] == pytest.approx(0.8)
    assert msg["metadata"]["request_id"] == "r1"
    plain = DeepgramEncoder(request_id="r1", model_name="tiny.en", options=LiveOptions())
    assert orjson.loads(plain.encode(t))["channel"]["alternatives"][0]["transcript"] == \
        "hello world"


def test_other_messages():
    enc = DeepgramEncoder(request_id="r", model_name="m", options=LiveOptions())
    assert orjson.loads(enc.encode(SpeechStarted(8000))) == {
        "type": "SpeechStarted", "channel": [0], "timestamp": 0.5}
    assert orjson.loads(enc.encode(UtteranceEnd(24000)))["last_word_end"] == 1.5
    meta = orjson.loads(enc.metadata(duration_samples=32000, sha256="ab", channels=1))
    assert meta["type"] == "Metadata" and meta["duration"] == 2.0 and meta["request_id"] == "r"


def test_text_analyses_keep_finals_whole():
    """Redaction, topics and sentiment read whole phrases: no finals inside an utterance."""
    from earmark.dialects.deepgram import LiveOptions

    def config(**kw):
        return session_config(LiveOptions(**kw).spec(), LivePolicy())

    plain = config()
    assert plain.agreement_margin_samples and plain.pause_cut_after_samples
    opus = config(agreement=False)  # WebRTC
    assert opus.agreement_margin_samples is None and opus.pause_cut_after_samples
    for options in ({"topics": True}, {"summarize": True}, {"whole_sentences": True},
                    {"diarize": True},
                    {"text": TextOptions(redact=frozenset({"phone_number"}))},
                    {"text": TextOptions(sentiment=True)}):
        whole = config(**options)
        assert whole.agreement_margin_samples is None and whole.pause_cut_after_samples is None


def test_server_defaults_fill_only_what_the_client_did_not_name() -> None:
    from earmark.dialects.deepgram import check_listen_defaults, parse_live_options

    defaults = [("tagging", "false"), ("endpointing", "300"), ("redact", "pci")]
    opts = parse_live_options([("endpointing", "100")], multilingual=False, defaults=defaults)
    assert not opts.tagging and opts.endpointing_ms == 100 and opts.text.redact == {"card"}
    # a repeatable parameter is the client's list or the default's, never both
    opts = parse_live_options([("redact", "ssn")], multilingual=False, defaults=defaults)
    assert opts.text.redact == {"ssn"}
    check_listen_defaults("tagging=false&interim_results=false")
    for bad in ("tagging=maybe", "token=abc", "url=http://example.com/a", "nonsense=1"):
        with pytest.raises(ValueError):
            check_listen_defaults(bad)


def test_a_very_short_endpointing_still_waits_100_ms_of_silence() -> None:
    from earmark.dialects.deepgram import LiveOptions

    def silence(ms: int) -> int:
        return session_config(LiveOptions(endpointing_ms=ms).spec(),
                              LivePolicy()).segmenter.silence_samples

    assert silence(10) == silence(25) == silence(100) == 1600 and silence(300) == 4800
