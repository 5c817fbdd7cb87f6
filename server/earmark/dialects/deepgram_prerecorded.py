"""Deepgram's pre-recorded API (``POST /v1/listen``): query options in, the response body out.

What the SDKs' ``transcribe_file`` / ``transcribe_url`` (and LiveKit's ``recognize()``) call.
The audio runs as a file job; this module only parses the request and shapes the stored
sentences (file-relative seconds, see ``filejobs.runner.message_record``) into Deepgram's
response schema: ``metadata``, ``results.channels[].alternatives[]`` with words, and
``utterances``, ``paragraphs``, ``entities`` and ``sentiments`` when asked for.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from earmark import __version__
from earmark.dialects.deepgram import (
    _bool,
    _int,
    bare_word,
    checked_detection,
    checked_language,
    collect_params,
    text_options,
)
from earmark.errors import InvalidParameter

# Accepted so SDK calls that send them work; they change nothing here (docs/protocol.md).
_ACCEPTED_NO_EFFECT = {"model", "version", "tier", "tag", "mip_opt_out", "filler_words",
                       "dictation", "extra", "measurements", "token", "language_hint"}
# Deepgram features this server does not have: asking for them is a 400, not a silent no-op.
_NOT_SUPPORTED = {"intents", "custom_topic", "custom_topic_mode",
                  "custom_intent", "custom_intent_mode", "search", "diarize_model",
                  "detect_topics", "alternatives"}
_KNOWN = ({"punctuate", "smart_format", "diarize", "multichannel", "utterances", "utt_split",
           "paragraphs", "language", "keywords", "keyterm", "callback", "callback_method",
           "redact", "replace", "profanity_filter", "sentiment", "detect_entities",
           "encoding", "sample_rate", "channels", "detect_language", "summarize", "topics",
           "numerals"}
          | _ACCEPTED_NO_EFFECT | _NOT_SUPPORTED)
RAW_ENCODINGS = ("linear16",)
DEFAULT_UTT_SPLIT_S = 0.8  # Deepgram's default pause between utterances
PARAGRAPH_GAP_S = 1.0  # a pause this long starts a new paragraph
PARAGRAPH_MAX_SENTENCES = 6


@dataclass(frozen=True)
class PrerecordedOptions:
    punctuate: bool = False
    smart_format: bool = False
    diarize: bool = False
    multichannel: bool = False
    utterances: bool = False
    utt_split_s: float = DEFAULT_UTT_SPLIT_S
    paragraphs: bool = False
    language: str = "en"
    keyterms: tuple[str, ...] = ()
    callback: str | None = None
    # Headerless audio: what its bytes are (None: a container FFmpeg recognises).
    encoding: str | None = None
    sample_rate: int | None = None
    channels: int = 1
    redact: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    profanity_filter: bool = False
    sentiment: bool = False
    detect_entities: bool = False
    numerals: bool = False  # spoken numbers as digits
    summarize: bool = False  # results.summary: an extractive summary (summarize=v2)
    topics: bool = False  # results.topics: IAB topics per passage, as on the socket
    detect_language: bool = False  # language "auto": each chunk in the language Whisper hears
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def hotwords(self) -> str | None:
        return ", ".join(self.keyterms) if self.keyterms else None

    @property
    def punctuated(self) -> bool:
        return self.punctuate or self.smart_format or self.paragraphs

    @property
    def text_stage(self) -> bool:
        return bool(self.redact or self.replace or self.profanity_filter or self.sentiment
                    or self.detect_entities or self.numerals)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrerecordedOptions:
        data = dict(data)
        data["keyterms"] = tuple(data.get("keyterms", ()))
        data["redact"] = tuple(data.get("redact", ()))
        data["replace"] = tuple(tuple(p) for p in data.get("replace", ()))
        return cls(**data)


def parse_prerecorded_options(params: Iterable[tuple[str, str]], *,
                              multilingual: bool) -> PrerecordedOptions:
    """Validates the query. Raises InvalidParameter naming the first bad parameter."""
    single, keyterms, repeated = collect_params(params, _KNOWN, ("redact", "replace", "extra"))
    for name in sorted(_NOT_SUPPORTED & single.keys()):
        if single[name].strip().lower() not in ("false", "0"):
            raise InvalidParameter(f"{name} is not supported by this server on pre-recorded "
                                   "audio", param=name)
    for name in ("filler_words", "dictation", "mip_opt_out", "measurements"):
        if name in single:
            _bool(name, single[name])
    detect = checked_detection(single, multilingual=multilingual)
    language = "auto" if detect else checked_language(single, multilingual=multilingual)
    method = single.get("callback_method", "post").lower()
    if method != "post":
        raise InvalidParameter("callback_method must be post", param="callback_method")
    callback = single.get("callback")
    if "callback_method" in single and callback is None:
        raise InvalidParameter("callback_method needs callback", param="callback_method")
    encoding = single.get("encoding")
    if encoding is not None:
        encoding = encoding.lower()
        if encoding not in RAW_ENCODINGS:
            raise InvalidParameter(f"encoding {encoding!r} is not supported for headerless "
                                   "audio; use linear16, or send a file with a container "
                                   "(WAV, MP3, FLAC, Ogg...), which is detected",
                                   param="encoding")
    sample_rate = None
    if "sample_rate" in single:
        sample_rate = _int("sample_rate", single["sample_rate"], 8000, 48000)
    if (encoding is None) != (sample_rate is None):
        raise InvalidParameter("headerless audio needs both encoding and sample_rate",
                               param="sample_rate" if encoding else "encoding")
    channels = _int("channels", single.get("channels", "1"), 1, 8)
    if "channels" in single and encoding is None:
        raise InvalidParameter("channels describes headerless audio; it needs encoding",
                               param="channels")
    utt_split = DEFAULT_UTT_SPLIT_S
    if "utt_split" in single:
        try:
            utt_split = float(single["utt_split"])
        except ValueError:
            raise InvalidParameter("utt_split must be a number of seconds",
                                   param="utt_split") from None
        if not 0.1 <= utt_split <= 10:
            raise InvalidParameter("utt_split must be between 0.1 and 10 s", param="utt_split")
    summarize = single.get("summarize", "false").strip().lower()
    if summarize not in ("v2", "true", "1", "false", "0"):
        raise InvalidParameter("summarize is v2 (or true) or false", param="summarize")
    text = text_options(repeated["redact"], repeated["replace"], single)
    return PrerecordedOptions(
        summarize=summarize in ("v2", "true", "1"),
        topics=_bool("topics", single.get("topics", "false")),
        punctuate=_bool("punctuate", single.get("punctuate", "false")),
        smart_format=_bool("smart_format", single.get("smart_format", "false")),
        diarize=_bool("diarize", single.get("diarize", "false")),
        multichannel=_bool("multichannel", single.get("multichannel", "false")),
        utterances=_bool("utterances", single.get("utterances", "false")),
        utt_split_s=utt_split,
        paragraphs=_bool("paragraphs", single.get("paragraphs", "false")),
        language=language, detect_language=detect, keyterms=tuple(keyterms),
        callback=callback,
        encoding=encoding, sample_rate=sample_rate, channels=channels,
        redact=tuple(sorted(text.redact)), replace=text.replace,
        profanity_filter=text.profanity, sentiment=text.sentiment,
        detect_entities=text.entities, numerals=text.numerals,
    )


# ------------------------------------------------------------------------------ response
def _r(seconds: float) -> float:
    return round(seconds, 3)


def _word(w: Sequence[Any], speaker: int | None, options: PrerecordedOptions) -> dict[str, Any]:
    text, start, end, confidence = w[0], w[1], w[2], w[3]
    out: dict[str, Any] = {
        "word": text if text.startswith(("[", "#")) or "*" in text else bare_word(text),
        "start": _r(start), "end": _r(end), "confidence": round(confidence, 4),
    }
    if options.punctuated:
        out["punctuated_word"] = text
    if options.diarize:
        out["speaker"] = speaker or 0
        out["speaker_confidence"] = 1.0 if speaker is not None else 0.0
    return out


def _channel_words(records: Sequence[dict[str, Any]],
                   options: PrerecordedOptions) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(word, its sentence record) in time order."""
    return [(_word(w, r.get("speaker"), options), r) for r in records for w in r["words"]]


def _transcript(words: Sequence[dict[str, Any]], options: PrerecordedOptions) -> str:
    key = "punctuated_word" if options.punctuated else "word"
    return " ".join(w[key] for w in words)


def _confidence(words: Sequence[dict[str, Any]]) -> float:
    return round(sum(w["confidence"] for w in words) / len(words), 4) if words else 0.0


def _paragraphs(records: Sequence[dict[str, Any]], options: PrerecordedOptions,
                words: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sentences grouped at long pauses and speaker changes."""
    groups: list[list[dict[str, Any]]] = []
    for r in records:
        if not r["words"]:
            continue
        last = groups[-1][-1] if groups else None
        if (last is None or r["start_s"] - last["end_s"] >= PARAGRAPH_GAP_S
                or r.get("speaker") != last.get("speaker")
                or len(groups[-1]) >= PARAGRAPH_MAX_SENTENCES):
            groups.append([r])
        else:
            groups[-1].append(r)
    paragraphs = []
    texts = []
    for group in groups:
        body: dict[str, Any] = {
            "sentences": [{"text": r["text"], "start": _r(r["start_s"]), "end": _r(r["end_s"])}
                          for r in group],
            "num_words": sum(len(r["words"]) for r in group),
            "start": _r(group[0]["start_s"]), "end": _r(group[-1]["end_s"]),
        }
        prefix = ""
        if options.diarize:
            body["speaker"] = group[0].get("speaker") or 0
            prefix = f"Speaker {body['speaker']}: "
        paragraphs.append(body)
        texts.append(prefix + " ".join(r["text"] for r in group))
    return {"transcript": "\n" + "\n\n".join(texts) if texts else "",
            "paragraphs": paragraphs}


def _entities(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record's entities ([label, text, start_s, end_s]) with word indexes into the
    channel's words (``end_word`` exclusive)."""
    out = []
    offset = 0
    for r in records:
        ws = r["words"]
        for label, text, start, end in r.get("entities", ()):
            inside = [i for i, w in enumerate(ws) if w[1] < end and w[2] > start]
            if not inside:
                continue
            span = ws[inside[0]:inside[-1] + 1]
            out.append({
                "label": label, "value": text,
                "raw_value": text if text.startswith(("[", "#")) else
                " ".join(bare_word(w[0]) for w in span),
                "confidence": round(sum(w[3] for w in span) / len(span), 4),
                "start_word": offset + inside[0], "end_word": offset + inside[-1] + 1,
            })
        offset += len(ws)
    return out


def _utterances(channel: int, pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]],
                options: PrerecordedOptions, request_id: str) -> list[dict[str, Any]]:
    """Words split at pauses of ``utt_split`` and at speaker changes."""
    runs: list[list[dict[str, Any]]] = []
    for word, _record in pairs:
        last = runs[-1][-1] if runs else None
        if (last is None or word["start"] - last["end"] >= options.utt_split_s
                or word.get("speaker") != last.get("speaker")):
            runs.append([word])
        else:
            runs[-1].append(word)
    out = []
    for run in runs:
        body: dict[str, Any] = {
            "start": run[0]["start"], "end": run[-1]["end"], "confidence": _confidence(run),
            "channel": channel, "transcript": _transcript(run, options), "words": run,
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                 f"{request_id}:{channel}:{run[0]['start']}")),
        }
        if options.diarize:
            body["speaker"] = run[0].get("speaker", 0)
        out.append(body)
    return out


def _sentiments(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    segments = []
    offset = 0
    for r in records:
        n = len(r["words"])
        if n and r.get("sentiment"):
            label, score = r["sentiment"]
            segments.append({"text": r["text"], "start_word": offset, "end_word": offset + n,
                             "sentiment": label, "sentiment_score": score})
        offset += n
    mean = (sum(s["sentiment_score"] for s in segments) / len(segments)) if segments else 0.0
    label = "positive" if mean >= 0.05 else "negative" if mean <= -0.05 else "neutral"
    return {"segments": segments,
            "average": {"sentiment": label, "sentiment_score": round(mean, 3)}}


def prerecorded_body(*, request_id: str, created: float, duration_s: float, channels: int,
                     sha256: str, model_name: str, records: Sequence[dict[str, Any]],
                     options: PrerecordedOptions, summary: str = "",
                     topics: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The response (or callback) body for one request's stored sentences (``summary``:
    their extractive summary, with ``summarize``; ``topics``: the segments of
    ``topic_segments``, with ``topics``)."""
    model_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"earmark:{model_name}"))
    n_channels = channels if options.multichannel else 1
    by_channel: list[list[dict[str, Any]]] = [[] for _ in range(n_channels)]
    for r in sorted(records, key=lambda r: r["start_s"]):
        index = min(max(int(r.get("channel") or 1), 1), n_channels) - 1
        by_channel[index].append(r)
    out_channels = []
    utterances: list[dict[str, Any]] = []
    for index, recs in enumerate(by_channel):
        pairs = _channel_words(recs, options)
        words = [w for w, _ in pairs]
        alternative: dict[str, Any] = {"transcript": _transcript(words, options),
                                       "confidence": _confidence(words), "words": words}
        if options.paragraphs:
            alternative["paragraphs"] = _paragraphs(recs, options, words)
        if options.detect_entities:
            alternative["entities"] = _entities(recs)
        channel: dict[str, Any] = {"alternatives": [alternative]}
        if options.detect_language:
            channel.update(detected_language(recs))
        out_channels.append(channel)
        if options.utterances:
            utterances.extend(_utterances(index, pairs, options, request_id))
    results: dict[str, Any] = {"channels": out_channels}
    if options.utterances:
        results["utterances"] = sorted(utterances, key=lambda u: (u["start"], u["channel"]))
    if options.sentiment:
        results["sentiments"] = _sentiments([r for recs in by_channel for r in recs])
    if options.summarize:
        results["summary"] = {"result": "success" if summary else "no speech",
                              "short": summary}
    if options.topics:
        results["topics"] = {"segments": list(topics)}
    info = {"name": model_name, "version": __version__, "arch": "whisper"}
    metadata: dict[str, Any] = {
        "transaction_key": "deprecated", "request_id": request_id, "sha256": sha256,
        "created": dt.datetime.fromtimestamp(created, dt.UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z"),
        "duration": _r(duration_s), "channels": n_channels, "models": [model_uuid],
        "model_info": {model_uuid: info},
    }
    for wanted, key in ((options.sentiment, "sentiment_info"),
                        (options.summarize, "summary_info"), (options.topics, "topics_info")):
        if wanted:
            metadata[key] = {"model_uuid": model_uuid, "input_tokens": 0, "output_tokens": 0}
    return {"metadata": metadata, "results": results}


def detected_language(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Deepgram's ``detected_language`` and ``language_confidence`` of a channel: the
    language most of its words were decoded in, and the mean probability Whisper gave it
    over those sentences (weighted by words)."""
    words: dict[str, float] = {}
    sure: dict[str, float] = {}
    for r in records:
        if r.get("language"):
            n = len(r["words"]) or 1
            words[r["language"]] = words.get(r["language"], 0) + n
            sure[r["language"]] = sure.get(r["language"], 0.0) + n * (
                r.get("language_confidence") or 0.0)
    if not words:
        return {}
    best = max(words, key=lambda k: words[k])
    return {"detected_language": best, "language_confidence": _r(sure[best] / words[best])}


TOPIC_PASSAGE_WORDS = 120  # the sentence model reads about 250 tokens


def topic_passages(records: Sequence[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """The stored sentences in passages of about ``TOPIC_PASSAGE_WORDS`` words, each as
    (text, start_word, end_word) with word indexes over all the words in time order."""
    passages: list[tuple[str, int, int]] = []
    texts: list[str] = []
    start = at = 0
    for r in sorted(records, key=lambda r: r["start_s"]):
        if not r["text"].strip():
            continue
        texts.append(r["text"].strip())
        at += len(r["words"])
        if sum(len(t.split()) for t in texts) >= TOPIC_PASSAGE_WORDS:
            passages.append((" ".join(texts), start, at))
            texts, start = [], at
    if texts:
        passages.append((" ".join(texts), start, at))
    return passages


def topic_segment(text: str, start_word: int, end_word: int,
                  found: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Deepgram's ``results.topics.segments[]`` entry, as the live socket writes it: ``topic``
    the IAB label's leaf, ``category`` its path (``end_word`` inclusive)."""
    return {"text": text, "start_word": start_word, "end_word": max(start_word, end_word - 1),
            "topics": [{"topic": name.rsplit(">", 1)[-1], "category": name,
                        "confidence_score": round(score, 3)} for name, score in found]}


def error_body(code: str, message: str, request_id: str,
               param: str | None = None) -> dict[str, Any]:
    """Deepgram's REST error shape (``err_code``, ``err_msg``, ``request_id``), with
    Earmark's stable code and the parameter at fault."""
    body: dict[str, Any] = {"err_code": code, "err_msg": message, "request_id": request_id}
    if param:
        body["param"] = param
    return body
