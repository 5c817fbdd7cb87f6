"""Deepgram's live-streaming dialect: query parameters in, JSON messages out.

This module is the only place that turns sample indices into seconds for the live socket.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from earmark import __version__
from earmark.core import SAMPLE_RATE
from earmark.core.events import (
    Event,
    SourceStatus,
    SpeechStarted,
    StreamClosed,
    Tags,
    Transcript,
    UtteranceEnd,
    Word,
)
from earmark.core.session_spec import SessionSpec, SpeakersSpec, TagsSpec, TopicsSpec
from earmark.core.text_options import TextOptions, redact_kinds
from earmark.errors import BadMessage, EarmarkError, FrameTooLarge, InvalidParameter

_ENCODINGS = {"linear16": "linear16", "f32": "f32", "float32": "f32"}
# Accepted so SDKs and apps that send them keep working; they change nothing here (documented).
_ACCEPTED_NO_EFFECT = {
    "model", "version", "tier", "tag", "mip_opt_out", "filler_words", "dictation",
    "no_delay", "punctuate", "smart_format", "extra",
}
# Features a later release adds; asking for them on today's server is an error, off is fine.
_NOT_YET = {"intents"}
_NOT_YET_VALUED = {"search", "callback", "callback_method", "diarize_model"}
_TEXT_FLAGS = {"profanity_filter", "sentiment", "detect_entities", "numerals"}
_KNOWN = (
    {"encoding", "sample_rate", "channels", "interim_results", "endpointing", "utterance_end_ms",
     "vad_events", "language", "keywords", "keyterm", "token", "url", "url_headers",
     "rtsp_transport", "tagging", "tag_collection", "seed_sentence", "redact", "replace",
     "detect_language", "diarize", "diarize_speakers", "multichannel", "topics",
     "custom_topic", "custom_topic_mode", "summarize"}
    | _ACCEPTED_NO_EFFECT | _NOT_YET | _NOT_YET_VALUED | _TEXT_FLAGS
)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_SEED_CHARS = 500
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue", "km", "bo"})


@dataclass(frozen=True)
class LiveOptions:
    """What a client asked for on ``/v1/listen``; units in the names."""

    encoding: str = "linear16"
    sample_rate: int = SAMPLE_RATE
    channels: int = 1
    interim_results: bool = True
    endpointing_ms: int | None = 500  # None: endpointing=false
    utterance_end_ms: int | None = None
    vad_events: bool = False
    language: str = "en"
    model: str | None = None
    keyterms: tuple[str, ...] = ()
    punctuate: bool = False
    smart_format: bool = False
    url: str | None = None  # the server pulls this source instead of reading audio frames
    url_headers: tuple[tuple[str, str], ...] = ()
    rtsp_transport: str = "tcp"
    tagging: bool = True
    tag_collection: str | None = None  # None: the default catalogue
    seed_sentence: str | None = None
    detect_language: bool = False  # decode each final in the language Whisper hears
    diarize: bool = False  # a speaker label on every word
    diarize_speakers: int | None = None  # at most this many speakers (None: estimated)
    multichannel: bool = False  # each channel transcribed on its own
    topics: bool = False  # IAB topics of each final
    custom_topics: tuple[str, ...] = ()  # the caller's topics, looked for in each final
    custom_topics_only: bool = False  # custom_topic_mode=strict: no IAB topics
    summarize: bool = False  # a Summary message of the stream before Metadata
    text: TextOptions = TextOptions()  # redact, replace, profanity_filter, sentiment, entities
    whole_sentences: bool = False  # the caller analyses the text afterwards (stream jobs)
    agreement: bool = True  # finals by local agreement of interim decodes (not over Opus)

    @property
    def hotwords(self) -> str | None:
        return ", ".join(self.keyterms) if self.keyterms else None

    def spec(self) -> SessionSpec:
        """The session these options ask for (milliseconds -> samples)."""
        return SessionSpec(
            interim_results=self.interim_results,
            endpointing_samples=None if self.endpointing_ms is None
            else self.endpointing_ms * SAMPLE_RATE // 1000,
            utterance_end_samples=None if self.utterance_end_ms is None
            else self.utterance_end_ms * SAMPLE_RATE // 1000,
            vad_events=self.vad_events,
            language="auto" if self.detect_language else self.language.split("-")[0].lower(),
            hotwords=self.hotwords, agreement=self.agreement,
            whole_sentences=self.whole_sentences, text=self.text,
            speakers=SpeakersSpec(self.diarize_speakers) if self.diarize else None,
            topics=TopicsSpec(self.custom_topics, self.custom_topics_only)
            if self.topics or self.custom_topics else None,
            tags=TagsSpec(self.seed_sentence) if self.tagging else None,
            summarize=self.summarize)


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise InvalidParameter(f"{name} must be true or false, got {value!r}", param=name)


def _int(name: str, value: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {value!r}", param=name) from None
    if not lo <= n <= hi:
        raise InvalidParameter(f"{name} must be between {lo} and {hi}, got {n}", param=name)
    return n


# Per-request values a server-wide default must not supply.
_NO_DEFAULT = {"token", "url", "url_headers"}


def check_listen_defaults(query: str) -> None:
    """Validates ``--listen-defaults`` (a query string); raises ValueError saying what is
    wrong."""
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    for name, _ in pairs:
        if name in _NO_DEFAULT:
            raise ValueError(f"{name} cannot be a server default; it belongs to one request")
    try:
        # Language options are checked against the loaded model per request.
        parse_live_options(pairs, multilingual=True)
    except InvalidParameter as exc:
        raise ValueError(f"listen_defaults: {exc.message}") from None


def collect_params(
    params: Iterable[tuple[str, str]], known: set[str], repeatable: tuple[str, ...],
) -> tuple[dict[str, str], list[str], dict[str, list[str]]]:
    """Sorts a query into single-valued parameters, keyterms (``keywords``, whose ``:boost``
    is dropped, and ``keyterm``) and the ``repeatable`` ones; raises InvalidParameter for an
    unknown name, a repeated single one, or too many values."""
    single: dict[str, str] = {}
    keyterms: list[str] = []
    repeated: dict[str, list[str]] = {name: [] for name in repeatable}
    for name, value in params:
        if name not in known:
            raise InvalidParameter(f"unknown query parameter {name!r}", param=name)
        if name in repeated:
            if len(repeated[name]) >= 100:
                raise InvalidParameter(f"at most 100 {name} values", param=name)
            repeated[name].append(value)
            continue
        if name in ("keywords", "keyterm"):
            term = (value.rsplit(":", 1)[0] if name == "keywords" else value).strip()
            if not term or len(term) > 100:
                raise InvalidParameter(f"{name} must be 1-100 characters", param=name)
            keyterms.append(term)
            continue
        if name in single:
            raise InvalidParameter(f"{name} was given more than once", param=name)
        single[name] = value
    if len(keyterms) > 100:
        raise InvalidParameter("at most 100 keywords/keyterm values", param="keyterm")
    return single, keyterms, repeated


def checked_language(single: dict[str, str], *, multilingual: bool) -> str:
    """The ``language`` parameter (default ``en``), refused when it is not a language code
    or the loaded model cannot decode it."""
    language = single.get("language", "en")
    if not _LANGUAGE.match(language):
        raise InvalidParameter(f"language {language!r} is not a language code", param="language")
    if not multilingual and language.split("-")[0].lower() != "en":
        raise InvalidParameter(
            f"language {language!r} needs a multilingual model; the loaded model is English-only",
            param="language",
        )
    return language


def checked_detection(single: dict[str, str], *, multilingual: bool) -> bool:
    """The ``detect_language`` parameter: it needs a multilingual model, and no ``language``."""
    detect = _bool("detect_language", single.get("detect_language", "false"))
    if detect and not multilingual:
        raise InvalidParameter("detect_language needs a multilingual model (e.g. --model base); "
                               "the loaded model is English-only", param="detect_language")
    if detect and "language" in single:
        raise InvalidParameter("give language or detect_language, not both",
                               param="detect_language")
    return detect


def with_defaults(params: Iterable[tuple[str, str]],
                  defaults: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The client's parameters, plus each default the client did not name (a repeatable one
    such as ``redact`` is the client's list or the default's, never both)."""
    given = list(params)
    named = {name for name, _ in given}
    return [(n, v) for n, v in defaults if n not in named] + given


def parse_live_options(params: Iterable[tuple[str, str]], *, multilingual: bool,
                       defaults: Iterable[tuple[str, str]] = ()) -> LiveOptions:
    """Validates query parameters (``defaults``: the server's, for names the client did not
    give). Raises InvalidParameter naming the first bad one."""
    single, keyterms, repeated = collect_params(
        with_defaults(params, defaults), _KNOWN, ("redact", "replace", "custom_topic"))

    for name in _NOT_YET:
        if name in single and _bool(name, single[name]):
            raise InvalidParameter(f"{name}=true is not supported by this server yet", param=name)
    for name in _NOT_YET_VALUED:
        if name in single:
            raise InvalidParameter(f"{name} is not supported by this server yet", param=name)
    for name in ("punctuate", "smart_format", "filler_words", "dictation",
                 "mip_opt_out", "no_delay"):
        if name in single:
            _bool(name, single[name])

    encoding = single.get("encoding", "linear16").lower()
    if encoding not in _ENCODINGS:
        raise InvalidParameter(
            f"encoding {encoding!r} is not supported; use linear16 or f32", param="encoding"
        )
    endpointing: int | None = 500
    if "endpointing" in single:
        raw = single["endpointing"].strip().lower()
        if raw == "false":
            endpointing = None
        elif raw != "true":
            endpointing = _int("endpointing", raw, 10, 10_000)
    utterance_end = None
    if "utterance_end_ms" in single:
        utterance_end = _int("utterance_end_ms", single["utterance_end_ms"], 1000, 10_000)
    language = checked_language(single, multilingual=multilingual)
    detect = checked_detection(single, multilingual=multilingual)
    url = single.get("url")
    headers: tuple[tuple[str, str], ...] = ()
    if "url_headers" in single:
        if url is None:
            raise InvalidParameter("url_headers needs url", param="url_headers")
        headers = _headers(single["url_headers"])
    rtsp_transport = single.get("rtsp_transport", "tcp").lower()
    if rtsp_transport not in ("tcp", "udp"):
        raise InvalidParameter("rtsp_transport must be tcp or udp", param="rtsp_transport")
    collection = single.get("tag_collection")
    if collection is not None and not COLLECTION_NAME.match(collection):
        raise InvalidParameter("tag_collection must be a collection name (letters, digits, "
                               "'_', '.', '-'; at most 64)", param="tag_collection")
    seed = single.get("seed_sentence")
    if seed is not None and not 0 < len(seed.strip()) <= MAX_SEED_CHARS:
        raise InvalidParameter(f"seed_sentence must be 1-{MAX_SEED_CHARS} characters",
                               param="seed_sentence")
    model = single.get("model")
    if model is not None and not 0 < len(model) <= 100:
        raise InvalidParameter("model must be 1-100 characters", param="model")
    text = text_options(repeated["redact"], repeated["replace"], single)
    diarize = _bool("diarize", single.get("diarize", "false"))
    diarize_speakers = None
    if "diarize_speakers" in single:
        if not diarize:
            raise InvalidParameter("diarize_speakers needs diarize=true", param="diarize_speakers")
        diarize_speakers = _int("diarize_speakers", single["diarize_speakers"], 1, 10)
    topics = _bool("topics", single.get("topics", "false"))
    custom = tuple(dict.fromkeys(t.strip() for t in repeated["custom_topic"] if t.strip()))
    if any(len(t) > 100 for t in custom):
        raise InvalidParameter("custom_topic is at most 100 characters", param="custom_topic")
    mode = single.get("custom_topic_mode", "extended").lower()
    if mode not in ("extended", "strict"):
        raise InvalidParameter("custom_topic_mode is extended or strict",
                               param="custom_topic_mode")
    if (custom or "custom_topic_mode" in single) and not topics:
        raise InvalidParameter("custom_topic and custom_topic_mode need topics=true",
                               param="custom_topic" if custom else "custom_topic_mode")
    summarize = single.get("summarize", "false").strip().lower()
    if summarize not in ("true", "false", "v2", "1", "0"):
        raise InvalidParameter("summarize is true, v2 or false", param="summarize")
    multichannel = _bool("multichannel", single.get("multichannel", "false"))
    if multichannel and url is not None:
        raise InvalidParameter("multichannel needs audio sent on the socket; a pulled url is "
                               "mixed to one channel", param="multichannel")
    return LiveOptions(
        topics=topics, custom_topics=custom, custom_topics_only=mode == "strict",
        summarize=summarize in ("true", "v2", "1"),
        multichannel=multichannel,
        diarize=diarize,
        diarize_speakers=diarize_speakers,
        text=text,
        detect_language=detect,
        encoding=_ENCODINGS[encoding],
        sample_rate=_int("sample_rate", single.get("sample_rate", "16000"), 8000, 48000),
        channels=_int("channels", single.get("channels", "1"), 1, 8),
        interim_results=_bool("interim_results", single.get("interim_results", "true")),
        endpointing_ms=endpointing,
        utterance_end_ms=utterance_end,
        vad_events=_bool("vad_events", single.get("vad_events", "false")),
        language=language,
        model=model,
        keyterms=tuple(keyterms),
        punctuate=_bool("punctuate", single.get("punctuate", "false")),
        smart_format=_bool("smart_format", single.get("smart_format", "false")),
        url=url,
        url_headers=headers,
        rtsp_transport=rtsp_transport,
        tagging=_bool("tagging", single.get("tagging", "true")),
        tag_collection=collection,
        seed_sentence=seed.strip() if seed else None,
    )


def text_options(redact: list[str], replace: list[str], single: dict[str, str]) -> TextOptions:
    """``redact`` (pci, ssn, numbers, pii, true; repeatable), ``replace=term:replacement``
    (repeatable), ``profanity_filter``, ``sentiment``, ``detect_entities``, ``numerals``."""
    kinds: frozenset[str] = frozenset()
    wanted = [r for r in redact if r.strip().lower() != "false"]
    try:
        kinds = redact_kinds(wanted)
    except ValueError as exc:
        raise InvalidParameter(f"redact: unknown value {exc}; use pci, ssn, numbers, pii or "
                               "true", param="redact") from None
    table = []
    for item in replace:
        source, sep, target = item.partition(":")
        source = " ".join(source.lower().split())
        if not sep or not source or len(item) > 200 or len(source.split()) > 4:
            raise InvalidParameter("replace takes term:replacement (a term of up to 4 words)",
                                   param="replace")
        table.append((source, target.strip()))
    return TextOptions(
        replace=tuple(table), redact=kinds,
        profanity=_bool("profanity_filter", single.get("profanity_filter", "false")),
        sentiment=_bool("sentiment", single.get("sentiment", "false")),
        entities=_bool("detect_entities", single.get("detect_entities", "false")),
        numerals=_bool("numerals", single.get("numerals", "false")))


def _headers(raw: str) -> tuple[tuple[str, str], ...]:
    """``url_headers`` is a JSON object of header names to values (e.g. Authorization)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidParameter("url_headers must be a JSON object", param="url_headers") from None
    if not isinstance(parsed, dict) or len(parsed) > 20:
        raise InvalidParameter("url_headers must be a JSON object of at most 20 headers",
                               param="url_headers")
    out = []
    for name, value in parsed.items():
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name) or (
            "\r" in value or "\n" in value or len(value) > 4096
        ):
            raise InvalidParameter(f"url_headers: bad header {name!r}", param="url_headers")
        out.append((name, value))
    return tuple(out)


def _s(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 3)


_STRIP = re.compile(r"^[^\w']+|[^\w']+$")


def bare_word(text: str) -> str:
    """Deepgram's ``word``: lowercase, no surrounding punctuation."""
    return _STRIP.sub("", text.strip()).lower() or text.strip().lower()


def entities_of(words: Sequence[Word],
                found: Iterable[tuple[str, str, int, int]]) -> list[dict[str, Any]]:
    """Deepgram's ``entities``: each entity's words by index (``end_word`` exclusive), its
    text as said (``value``) and as bare words (``raw_value``), and the mean confidence of
    its words."""
    out = []
    for label, text, start, end in found:
        inside = [i for i, w in enumerate(words)
                  if w.start_sample < end and w.end_sample > start]
        if not inside:
            continue
        first, last = inside[0], inside[-1] + 1
        span = words[first:last]
        out.append({"label": label, "value": text,
                    # a redacted entity's words are labels, not what was said
                    "raw_value": text if text.startswith(("[", "#")) else
                    " ".join(bare_word(w.text) for w in span),
                    "confidence": round(sum(w.probability for w in span) / len(span), 4),
                    "start_word": first, "end_word": last})
    return out


class DeepgramEncoder:
    """Turns core events of one stream into Deepgram JSON messages."""

    def __init__(self, *, request_id: str, model_name: str, options: LiveOptions,
                 channel: int = 0, channels: int = 1) -> None:
        """``channel`` of ``channels``: a multichannel stream has one encoder per channel."""
        self.request_id = request_id
        self.options = options
        self.model_name = model_name
        self.model_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"earmark:{model_name}"))
        self.model_info = {"name": model_name, "version": __version__, "arch": "whisper"}
        self.created = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        self.channel = channel
        self._channel_index = [channel, channels]

    def encode(self, event: Event) -> bytes | None:
        if isinstance(event, Transcript):
            return orjson.dumps(self._results(event))
        if isinstance(event, SpeechStarted):
            return orjson.dumps(
                {"type": "SpeechStarted", "channel": [self.channel],
                 "timestamp": _s(event.start_sample)}
            )
        if isinstance(event, UtteranceEnd):
            return orjson.dumps(
                {"type": "UtteranceEnd", "channel": self._channel_index,
                 "last_word_end": _s(event.last_word_end_sample)}
            )
        if isinstance(event, StreamClosed):
            return None  # the adapter sends Metadata with the byte counts it owns
        if isinstance(event, Tags):
            body = tags_message(event)
            if self._channel_index[1] > 1:
                body["channel_index"] = self._channel_index
            return orjson.dumps(body)
        if isinstance(event, SourceStatus):
            return orjson.dumps({"type": "SourceStatus", "state": event.state,
                                 "reason": event.reason})
        raise TypeError(f"no encoding for {event!r}")  # pragma: no cover

    def _results(self, t: Transcript) -> dict:
        punctuated = self.options.punctuate or self.options.smart_format
        words = [
            {
                "word": w.text.strip() if w.text.strip().startswith(("[", "#"))
                or "*" in w.text else bare_word(w.text),
                "start": _s(w.start_sample),
                "end": _s(w.end_sample),
                "confidence": round(w.probability, 4),
                "punctuated_word": w.text.strip(),
                **({"speaker": w.speaker or 0} if self.options.diarize else {}),
            }
            for w in t.words
        ]
        # Chinese, Japanese, Thai... are written without spaces between words.
        joiner = "" if t.language in UNSPACED_LANGUAGES else " "
        transcript = joiner.join(w["punctuated_word" if punctuated else "word"] for w in words)
        body = {
            "type": "Results",
            "channel_index": self._channel_index,
            "duration": _s(t.end_sample - t.start_sample),
            "start": _s(t.start_sample),
            "is_final": t.is_final,
            "speech_final": t.speech_final,
            "from_finalize": t.from_finalize,
            "channel": {
                "alternatives": [
                    {"transcript": transcript, "confidence": round(t.confidence, 4),
                     "words": words, **self._understanding(t)}
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": self.model_info,
                "model_uuid": self.model_uuid,
            },
        }
        if self.options.text.entities:
            body["entities"] = entities_of(t.words, t.entities)
        return body

    def _understanding(self, t: Transcript) -> dict:
        """Sentiment and entities, present only when the client asked for them."""
        extra: dict = {}
        if self.options.text.sentiment and t.sentiment is not None:
            extra["sentiments"] = {"segments": [{"text": " ".join(w.text.strip()
                                                                  for w in t.words),
                                                 "start": _s(t.start_sample),
                                                 "end": _s(t.end_sample),
                                                 "sentiment": t.sentiment[0],
                                                 "sentiment_score": t.sentiment[1]}]}
        if self.options.detect_language and t.language:
            extra["languages"] = [t.language]
            if t.language_confidence is not None:
                extra["language_confidence"] = round(t.language_confidence, 4)
        if self.options.topics and t.is_final:
            extra["topics"] = {"segments": [{
                "text": " ".join(w.text.strip() for w in t.words),
                "start_word": 0, "end_word": len(t.words) - 1,
                "topics": [{"topic": name.rsplit(">", 1)[-1], "category": name,
                            "confidence_score": score} for name, score in t.topics],
            }] if t.topics and t.words else []}
        return extra

    @staticmethod
    def error(err: EarmarkError) -> bytes:
        return error_message(err)

    def summary(self, text: str, short: str) -> bytes:
        """Earmark's ``Summary`` message (``summarize=true``), sent before Metadata."""
        return orjson.dumps({"type": "Summary", "channel_index": self._channel_index,
                             "summary": {"result": "success" if text else "no speech",
                                         "short": short, "text": text}})

    def metadata(self, *, duration_samples: int, sha256: str, channels: int) -> bytes:
        return orjson.dumps(
            {
                "type": "Metadata",
                "transaction_key": "deprecated",
                "request_id": self.request_id,
                "sha256": sha256,
                "created": self.created,
                "duration": _s(duration_samples),
                "channels": channels,
                "models": [self.model_uuid],
                "model_info": {self.model_uuid: self.model_info},
            }
        )


def tags_message(t: Tags) -> dict:
    """Earmark's ``Tags`` message (not part of Deepgram's dialect; clients ignore unknown
    types)."""
    body: dict = {
        "type": "Tags",
        "start": _s(t.start_sample),
        "end": _s(t.end_sample),
        "tags": [{"name": s.name, "kind": s.kind, "score": round(s.score, 3)} for s in t.tags],
        "undocumented_tags": [{"name": s.name, "score": round(s.score, 3), "documented": False}
                              for s in t.undocumented],
    }
    if t.reason is not None:
        body["reason"] = t.reason
    return body


MAX_CONTROL_BYTES = 64 * 1024
CONTROL_TYPES = ("KeepAlive", "Finalize", "CloseStream")


def parse_control(text: str) -> str:
    """One text control message -> its type (KeepAlive, Finalize or CloseStream)."""
    if len(text) > MAX_CONTROL_BYTES:
        raise FrameTooLarge(f"text frame over {MAX_CONTROL_BYTES} bytes")
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadMessage(
            "text frames must be JSON control messages; send audio as binary frames"
        ) from None
    kind = body.get("type") if isinstance(body, dict) else None
    if kind not in CONTROL_TYPES:
        raise BadMessage(
            f"unknown control message type {kind!r}; expected KeepAlive, Finalize or CloseStream"
        )
    return str(kind)


def error_message(err: EarmarkError) -> bytes:
    """Deepgram's ``Error`` frame, with Earmark's stable code in ``variant``/``code``."""
    body = {"type": "Error", "variant": err.code, "code": err.code, "description": err.message,
            "message": err.message}
    if err.param:
        body["param"] = err.param
    return orjson.dumps(body)
