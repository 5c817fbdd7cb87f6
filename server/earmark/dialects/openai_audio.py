"""The OpenAI audio API's transcription requests and responses (``/v1/audio/...``).

Pure: form fields in, ``OpenAIAudioOptions`` out (or ``InvalidParameter``); stored sentence
records (``filejobs/runner.message_record``) in, a response body in the asked
``response_format`` out. The routes (``api/openai_routes.py``) run the audio as a file job.
Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from earmark.errors import InvalidParameter

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}$")
_EDGE_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")
MAX_PROMPT_CHARS = 1000
# Fields the OpenAI SDK sends that change nothing here, and the value each must have.
_ACCEPTED_AS = {"chunking_strategy": ("auto",), "stream": ("false",)}


@dataclass(frozen=True)
class OpenAIAudioOptions:
    model: str
    response_format: str = "json"
    language: str | None = None  # None: the model's own (English-only) or detected per chunk
    prompt: str | None = None
    words: bool = False  # timestamp_granularities[] has "word"
    segments: bool = True  # ... "segment" (the default)
    task: str = "transcribe"


def parse_form(fields: Sequence[tuple[str, str]], *, task: str,
               multilingual: bool) -> OpenAIAudioOptions:
    """The form fields other than ``file``. Unknown fields and values Earmark cannot honour
    are refused, as OpenAI refuses unrecognized arguments."""
    single: dict[str, str] = {}
    granularities: list[str] = []
    for name, value in fields:
        if name in ("timestamp_granularities[]", "timestamp_granularities"):
            granularities.append(value)
        elif name in single:
            raise InvalidParameter(f"{name} is given twice", param=name)
        else:
            single[name] = value
    known = {"model", "response_format", "language", "prompt", "temperature",
             *_ACCEPTED_AS}
    for name in single:
        if name not in known:
            raise InvalidParameter(f"unrecognized request argument: {name}", param=name)
    model = single.get("model", "").strip()
    if not model:
        raise InvalidParameter("model is required (any name: the server's loaded model "
                               "answers; GET /v1/models lists it)", param="model")
    response_format = single.get("response_format", "json")
    if response_format not in FORMATS:
        raise InvalidParameter(f"response_format must be one of {', '.join(FORMATS)}",
                               param="response_format")
    for name, allowed in _ACCEPTED_AS.items():
        if name in single and single[name].lower() not in allowed:
            raise InvalidParameter(f"{name}={single[name]} is not supported; "
                                   f"use {' or '.join(allowed)}", param=name)
    _check_temperature(single.get("temperature"))
    for g in granularities:
        if g not in GRANULARITIES:
            raise InvalidParameter("timestamp_granularities[] takes segment and word",
                                   param="timestamp_granularities[]")
    if granularities and response_format != "verbose_json":
        raise InvalidParameter("timestamp_granularities[] needs response_format=verbose_json",
                               param="timestamp_granularities[]")
    language = single.get("language") or None
    if language is not None:
        if not _LANGUAGE.match(language):
            raise InvalidParameter(f"language {language!r} is not an ISO-639-1 code",
                                   param="language")
        language = language.lower()
        if not multilingual and language != "en":
            raise InvalidParameter(f"language {language!r} needs a multilingual model; the "
                                   "loaded model is English-only", param="language")
    if task == "translate":
        if not multilingual:
            raise InvalidParameter("translation needs a multilingual model (e.g. --model "
                                   "base); the loaded model is English-only", param="model")
        raise InvalidParameter("translation is not served: Earmark's decoder transcribes "
                               "only", param="model")
    prompt = single.get("prompt") or None
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidParameter(f"prompt is over {MAX_PROMPT_CHARS} characters", param="prompt")
    return OpenAIAudioOptions(
        model=model, response_format=response_format, language=language, prompt=prompt,
        words="word" in granularities,
        segments="segment" in granularities or not granularities, task=task)


def _check_temperature(raw: str | None) -> None:
    if raw is None or raw == "":
        return
    try:
        value = float(raw)
    except ValueError:
        raise InvalidParameter("temperature must be a number", param="temperature") from None
    if not 0 <= value <= 1:
        raise InvalidParameter("temperature must be between 0 and 1", param="temperature")
    if value != 0:
        raise InvalidParameter("Earmark decodes with beam search: temperature must be 0",
                               param="temperature")


def error_body(message: str, param: str | None = None, code: str | None = None,
               kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return dict(LANGUAGES)


def language_name(code: str) -> str:
    """OpenAI's verbose_json names the language ("english"), as Whisper's table does."""
    return _language_names().get(code, code)


def _text(records: Sequence[dict[str, Any]]) -> str:
    return " ".join(r["text"].strip() for r in records if r["text"].strip())


def _stamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def _cues(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["text"].strip()]


def srt(records: Sequence[dict[str, Any]]) -> str:
    return "".join(f"{i}\n{_stamp(r['start_s'], ',')} --> {_stamp(r['end_s'], ',')}\n"
                   f"{r['text'].strip()}\n\n" for i, r in enumerate(_cues(records), 1))


def vtt(records: Sequence[dict[str, Any]]) -> str:
    return "WEBVTT\n\n" + "".join(
        f"{_stamp(r['start_s'], '.')} --> {_stamp(r['end_s'], '.')}\n{r['text'].strip()}\n\n"
        for r in _cues(records))


def _segment(i: int, r: dict[str, Any]) -> dict[str, Any]:
    text = r["text"].strip()
    probs = [max(w[3], 1e-6) for w in r["words"]]
    data = text.encode("utf-8")
    return {
        "id": i, "seek": int(round(r["start_s"] * 100)), "start": r["start_s"],
        "end": r["end_s"], "text": " " + text,
        "tokens": [],  # Whisper's token ids are not kept with the sentence
        "temperature": 0.0,
        # the mean log-probability of the segment's words (Whisper's is over tokens)
        "avg_logprob": round(sum(math.log(p) for p in probs) / len(probs), 4) if probs else 0.0,
        "compression_ratio": round(len(data) / len(zlib.compress(data)), 4) if data else 0.0,
        # speech was found by the VAD before decoding, so the model's own no-speech
        # estimate is not kept
        "no_speech_prob": 0.0,
    }


def verbose_json(records: Sequence[dict[str, Any]], options: OpenAIAudioOptions,
                 duration_s: float, language: str) -> dict[str, Any]:
    cues = _cues(records)
    body: dict[str, Any] = {
        "task": options.task, "language": language_name(language),
        "duration": round(duration_s, 3), "text": _text(cues),
    }
    if options.segments:
        body["segments"] = [_segment(i, r) for i, r in enumerate(cues)]
    if options.words:
        # OpenAI's words keep their case but not the punctuation around them
        body["words"] = [{"word": _EDGE_PUNCT.sub("", w[0]) or w[0], "start": w[1],
                          "end": w[2]} for r in cues for w in r["words"]]
    body["usage"] = {"type": "duration", "seconds": math.ceil(duration_s)}
    return body


def render(records: Sequence[dict[str, Any]], options: OpenAIAudioOptions,
           duration_s: float, language: str) -> tuple[str | dict[str, Any], str]:
    """(body, media type) of the response in ``options.response_format``."""
    records = sorted(records, key=lambda r: r["start_s"])
    fmt = options.response_format
    if fmt == "text":
        return _text(records) + "\n", "text/plain; charset=utf-8"
    if fmt == "srt":
        return srt(records), "application/x-subrip; charset=utf-8"
    if fmt == "vtt":
        return vtt(records), "text/vtt; charset=utf-8"
    if fmt == "verbose_json":
        return verbose_json(records, options, duration_s, language), "application/json"
    return {"text": _text(records),
            "usage": {"type": "duration", "seconds": math.ceil(duration_s)}}, "application/json"


def detected_language(records: Sequence[dict[str, Any]], default: str) -> str:
    """The language most words were heard in (records marked by ``mark_languages``)."""
    counts: dict[str, int] = {}
    for r in records:
        if r.get("language"):
            counts[r["language"]] = counts.get(r["language"], 0) + len(r["words"])
    return max(counts, key=lambda k: counts[k]) if counts else default
