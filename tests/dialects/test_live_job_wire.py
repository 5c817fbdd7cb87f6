"""Wire shapes of tagging-session webhooks and stream-job callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest

from earmark.core.events import Tags, TagScore, Word
from earmark.core.languages import ModelLanguages
from earmark.core.segments import Segment
from earmark.dialects.chatsight import restamp, tag_fields, webhook_body, webhook_payload
from earmark.dialects.stream_jobs import (
    SentenceSentiment,
    StreamStartRequest,
    segment_callback,
    stop_callback,
    stream_options,
)
from earmark.errors import InvalidParameter
from earmark.inference.tagger import SafetyLabel
from earmark.inference.understanding import Entity, Sentiment
from tests.conftest import client_example

verify_webhook = client_example("verify_webhook")

S = 16000


def test_tag_webhook_hmac_signs_the_time_and_the_canonical_payload() -> None:
    tags = Tags(0, 60 * S, (TagScore("Sports", "topic", 0.5), TagScore("Excited", "mood", 0.3)),
                (TagScore("penalty kick", "keyword", 0.2),))
    names, extra = tag_fields(tags)
    payload = webhook_payload(tags=names, undocumented=extra, convo_id="c1")
    raw = webhook_body("s3cret", payload, 1620487495836)
    body = orjson.loads(raw)
    # undocumentedTags stays the seed's boolean; the names have a field of their own.
    assert body["payload"] == {"tags": "Sports,Excited", "undocumentedTags": True,
                               "undocumentedTagNames": "penalty kick", "convoId": "c1"}
    canonical = (b'{"convoId":"c1","tags":"Sports,Excited","undocumentedTagNames":"penalty kick",'
                 b'"undocumentedTags":true}')
    mac = hmac.new(b"s3cret", b"1620487495836." + canonical, hashlib.sha256).digest()
    assert body["hmac"] == base64.b64encode(mac).decode()
    assert verify_webhook.verify_tag_webhook("s3cret", raw.encode(), now=1620487495.836)
    # A replay with a fresh time no longer matches; an old time is refused as it stands.
    replayed = orjson.dumps({**body, "time": 1620487999000})
    assert not verify_webhook.verify_tag_webhook("s3cret", replayed, now=1620487999.0)
    assert not verify_webhook.verify_tag_webhook("s3cret", raw.encode(), now=1620487495.836 + 301)
    assert not verify_webhook.verify_tag_webhook("other", raw.encode(), now=1620487495.836)
    # Each attempt is signed anew at its own time, with the same payload.
    again = orjson.loads(restamp(raw, "s3cret", 1620490000000))
    assert again["payload"] == body["payload"] and again["time"] == 1620490000000
    assert verify_webhook.verify_tag_webhook("s3cret", orjson.dumps(again), now=1620490000.0)
    assert tag_fields(None) == ("", "")
    assert webhook_payload(tags="", undocumented="", convo_id="c2")["undocumentedTags"] is False


def test_segment_callback_formats_words_and_times() -> None:
    options = stream_options(StreamStartRequest(
        audio_url="rtmp://x/live", audio_start_from=2000,
        custom_spelling=[{"from": ["colour"], "to": "color"}]), ModelLanguages())
    seg = Segment(1, 5 * S, 10 * S, (Word(" The", 5 * S, 5 * S + 4000, 0.91),
                                      Word(" Colour,", 6 * S, 6 * S + 8000, 0.8)))
    body = segment_callback("t1", seg, options)
    data = body["data"]
    assert (data["segment_start_time"], data["segment_end_time"]) == ("7.000", "12.000")
    assert data["status"] == 0 and body["task_id"] == "t1"
    words = data["transcript"]["words"]
    assert [w["text"] for w in words] == ["the", "color"]  # no punctuation, no casing
    assert (words[0]["start"], words[0]["end"]) == (7000, 7250)
    assert data["transcript"]["text"] == "the color"
    stopped = stop_callback("t1", 2, 10 * S, 10 * S, options, 14, "stopped by the user")
    assert stopped["data"]["status"] == 14 and stopped["data"]["transcript"] is None


def test_custom_spelling_matches_phrases_and_keeps_its_case() -> None:
    spelling = [{"from": ["new york city"], "to": "NYC"}, {"from": ["Earmark"], "to": "EarMark"}]
    said = (Word(" We", 0, 3000, 0.9), Word(" flew", 3000, 6000, 0.9),
            Word(" to", 6000, 8000, 0.9), Word(" New", 8000, 10000, 0.9),
            Word(" York", 10000, 13000, 0.7), Word(" City,", 13000, 16000, 0.8),
            Word(" with", 16000, 18000, 0.9), Word(" earmark.", 18000, 22000, 0.9))
    seg = Segment(0, 0, 5 * S, said)
    for punctuate, expected in ((False, "we flew to NYC with EarMark"),
                                (True, "We flew to NYC, with EarMark.")):
        options = stream_options(StreamStartRequest(
            audio_url="rtmp://x/live", custom_spelling=spelling, punctuate=punctuate,
            format_text=punctuate), ModelLanguages())
        words = segment_callback("t1", seg, options)["data"]["transcript"]["words"]
        assert " ".join(w["text"] for w in words) == expected
        nyc = next(w for w in words if w["text"].startswith("NYC"))
        assert (nyc["start"], nyc["end"], nyc["confidence"]) == (500, 1000, 0.7)  # one span


def test_entity_types_have_assemblyai_names() -> None:
    options = stream_options(StreamStartRequest(audio_url="rtmp://x/live",
                                                entity_detection=True), ModelLanguages())
    seg = Segment(0, 0, 5 * S, (Word(" Ann", 0, 4000, 0.9),))
    found = (("PERSON", "Ann", 0, 4000), ("GPE", "London", 0, 4000),
             ("ORG", "Acme", 0, 4000), ("EMAIL_ADDRESS", "a@b.co", 0, 4000),
             ("MONEY", "ten pounds", 0, 4000), ("WORK_OF_ART", "Hamlet", 0, 4000))
    got = segment_callback("t1", seg, options, entities=[Entity(*e) for e in found])[
        "data"]["transcript"]
    assert [e["entity_type"] for e in got["entities"]] == [
        "person_name", "location", "organization", "email_address", "money_amount",
        "work_of_art"]


@pytest.mark.parametrize(("field", "value"), [("redact_pii_audio", True),
                                              ("language_code", "fr")])
def test_options_not_available_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(InvalidParameter) as err:
        stream_options(StreamStartRequest(audio_url="rtmp://x", **{field: value}), ModelLanguages())
    assert err.value.param == field


def test_language_code_with_language_detection_is_taken() -> None:
    both = {"audio_url": "rtmp://x/live", "language_code": "en_us", "language_detection": True}
    options = stream_options(StreamStartRequest(**both), ModelLanguages())
    assert options.language_code == "en" and "language_detection" in options.ignored
    many = ModelLanguages(multilingual=True, supported=frozenset({"en", "es"}))
    assert stream_options(StreamStartRequest(**both), many).language_code == "auto"
    # Detection on an English-only model, or a language it cannot speak, is still refused.
    for body in ({"language_detection": True}, {"language_code": "es",
                                                "language_detection": True}):
        with pytest.raises(InvalidParameter):
            stream_options(StreamStartRequest(audio_url="rtmp://x", **body), ModelLanguages())
    with pytest.raises(InvalidParameter) as err:
        stream_options(StreamStartRequest(audio_url="rtmp://x", speech_understanding={
            "request": {"translation": {"target_languages": ["es"]}}}), ModelLanguages())
    assert err.value.param == "speech_understanding" and "translation" in err.value.message


def test_hosted_bodies_with_nulls_speech_models_and_bullets_verbose_are_taken() -> None:
    # A hosted-API client sends every field, null where unset, and names its models.
    body = {"audio_url": "rtmp://x/live", "language_code": None, "punctuate": None,
            "speakers_expected": None, "topics": None, "speech_models": ["universal"],
            "summarization": True, "summary_type": "bullets_verbose", "summary_model": None}
    options = stream_options(StreamStartRequest(**body), ModelLanguages())
    assert options.summarization and options.summary_type == "bullets_verbose"
    assert options.punctuate is False and options.language_code == "en"
    seg = Segment(0, 0, 5 * S, (Word(" hello", 0, 8000, 0.9),))
    data = segment_callback("t1", seg, options, speech_model="tiny.en")["data"]
    assert data["transcript"]["speech_model"] == "tiny.en"  # what ran, not what was asked


@pytest.mark.parametrize(("body", "param"), [
    ({"custom_topics": True}, "topics"),
    ({"custom_topics": True, "topics": ["  "]}, "topics"),
    ({"custom_topics": True, "topics": ["x" * 101]}, "topics"),
    ({"speaker_labels": True, "speakers_expected": 11}, "speakers_expected"),
])
def test_topic_and_speaker_options_are_checked(body: dict, param: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        stream_options(StreamStartRequest(audio_url="rtmp://x", **body), ModelLanguages())
    assert err.value.param == param


def test_topics_speakers_and_categories_in_a_callback() -> None:
    from earmark.core.events import Word
    from earmark.core.segments import Segment
    from earmark.dialects.stream_jobs import SegmentTopics, segment_callback

    options = stream_options(StreamStartRequest(
        audio_url="rtmp://x", speaker_labels=True, iab_categories=True, custom_topics=True,
        topics=["football", "football", "cooking"]), ModelLanguages())
    assert options.topics == ("football", "cooking")  # duplicates dropped
    words = (Word(" goal", 0, 8000, 0.9, 0), Word(" yes", 8000, 16000, 0.8, 1),
             Word(" indeed", 16000, 24000, 0.7, 1))
    body = segment_callback("t1", Segment(0, 0, 5 * 16000, words), options, topics=SegmentTopics(
        iab=(("Sports>Soccer", 0.8),), custom=(("football", 0.9),),
        iab_so_far={"Sports>Soccer": 1.0}, custom_so_far={"football": 1.0}))
    t = body["data"]["transcript"]
    assert [w["speaker"] for w in t["words"]] == ["A", "B", "B"]
    assert [(u["speaker"], u["text"], u["start"], u["end"]) for u in t["utterances"]] == [
        ("A", "goal", 0, 500), ("B", "yes indeed", 500, 1500)]
    assert t["iab_categories_result"] == {
        "status": "success", "summary": {"Sports>Soccer": 1.0},
        "results": [{"text": "goal yes indeed", "labels": [{"relevance": 0.8,
                                                            "label": "Sports>Soccer"}],
                     "timestamp": {"start": 0, "end": 1500}}]}
    assert t["custom_topics_result"]["results"][0]["labels"] == [
        {"relevance": 0.9, "label": "football"}]
    assert t["topics"] == ["football", "cooking"]


def test_sentiment_is_one_result_per_sentence() -> None:
    from earmark.dialects.stream_jobs import sentences_of

    options = stream_options(StreamStartRequest(audio_url="rtmp://x/live", punctuate=True,
                                                format_text=True, sentiment_analysis=True),
                             ModelLanguages())
    said = (Word(" What", 0, 3000, 0.9), Word(" a", 3000, 4000, 0.9),
            Word(" goal!", 4000, 8000, 0.9), Word(" The", 9000, 10000, 0.9),
            Word(" keeper", 10000, 14000, 0.9), Word(" slipped.", 14000, 20000, 0.9))
    parts = sentences_of(said)
    assert [len(p) for p in parts] == [3, 3]
    seg = Segment(0, 0, 5 * S, said)
    got = segment_callback("t1", seg, options, sentiment=(
        SentenceSentiment(3, Sentiment("positive", 0.6)),
        SentenceSentiment(3, Sentiment("negative", -0.4))))
    results = got["data"]["transcript"]["sentiment_analysis_results"]
    assert [(r["text"], r["sentiment"], r["start"], r["end"]) for r in results] == [
        ("What a goal!", "POSITIVE", 0, 500), ("The keeper slipped.", "NEGATIVE", 562, 1250)]
    assert results[1]["confidence"] == 0.4


def test_content_safety_labels_carry_a_severity_and_its_summary() -> None:
    options = stream_options(StreamStartRequest(audio_url="rtmp://x/live", content_safety=True),
                             ModelLanguages())
    said = tuple(Word(f" {w}", k * 4000, (k + 1) * 4000, 0.9) for k, w in
                 enumerate("the gunman shot two people dead".split()))
    got = segment_callback("t1", Segment(0, 0, 5 * S, said), options,
                           safety=(SafetyLabel("crime_violence", 0.61),
                                   SafetyLabel("weapons", 0.44)))
    labels = got["data"]["transcript"]["content_safety_labels"]
    assert labels["summary"] == {"crime_violence": 0.61, "weapons": 0.44}
    [result] = labels["results"]
    assert [(x["label"], x["severity"]) for x in result["labels"]] == [
        ("crime_violence", 0.9), ("weapons", 0.9)]
    assert result["timestamp"] == {"start": 0, "end": 1500}
    assert labels["severity_score_summary"]["crime_violence"] == {
        "low": 0.0, "medium": 0.0, "high": 1.0}
    clean = segment_callback("t1", Segment(0, 0, 5 * S, said[:2]), options)
    assert clean["data"]["transcript"]["content_safety_labels"] == {
        "status": "success", "results": [], "summary": {}, "severity_score_summary": {}}


# Seed 004's own request example, verbatim: every feature off, its refinements filled with
# placeholders. The hosted API starts it; so must Earmark (only the host and key change).
SEED_004_EXAMPLE = {
    "audio_url": "rtmp://example.com/live/audio", "language_code": "en", "punctuate": False,
    "format_text": False, "language_detection": False, "language_confidence_threshold": 0,
    "audio_start_from": 0, "audio_end_at": 0, "multichannel": False,
    "speech_models": ["<string>"], "speech_threshold": 0, "disfluencies": False,
    "speaker_labels": False, "speakers_expected": 0, "sentiment_analysis": False,
    "entity_detection": False, "auto_highlights": False, "content_safety": False,
    "iab_categories": False, "auto_chapters": False, "summarization": False,
    "summary_model": "<string>", "summary_type": "<string>", "custom_topics": False,
    "topics": ["<string>"], "redact_pii": False, "redact_pii_sub": "<string>",
    "redact_pii_policies": ["<string>"], "redact_pii_audio": False,
    "redact_pii_audio_quality": "<string>", "filter_profanity": False,
    "custom_spelling": [{}], "speech_understanding": {}}


def test_the_seed_004_example_body_starts_and_names_what_has_no_effect() -> None:
    options = stream_options(StreamStartRequest(**SEED_004_EXAMPLE), ModelLanguages())
    assert set(options.ignored) == {"summary_model", "summary_type", "topics",
                                    "redact_pii_sub", "redact_pii_policies",
                                    "redact_pii_audio_quality"}
    assert not options.summarization and options.summary_type == "paragraph"
    assert not options.text.redact and options.redacted_audio is None and not options.topics
    # Turned on, the same refinements are checked as before.
    with pytest.raises(InvalidParameter) as err:
        stream_options(StreamStartRequest(**{**SEED_004_EXAMPLE, "summarization": True}),
                       ModelLanguages())
    assert err.value.param == "summary_type"
    with pytest.raises(InvalidParameter) as err:
        stream_options(StreamStartRequest(**{**SEED_004_EXAMPLE, "redact_pii": True}),
                       ModelLanguages())
    assert err.value.param == "redact_pii_policies"
