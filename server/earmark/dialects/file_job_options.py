"""Seed 003's query parameters for ``POST``/``PUT /v1/process/audio``, validated.

Options this server does not implement yet are refused with a 400 that names them, never
ignored; unknown parameters are refused too.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from earmark.core.languages import ModelLanguages
from earmark.errors import InvalidParameter

# Seed parameters this server does not implement yet: refused when turned on, never ignored.
NOT_AVAILABLE = {
    "enableAllTrackers": "account-wide trackers (pass trackers with the request instead)",
}
NOT_AVAILABLE_LISTS: dict[str, str] = {}
KNOWN = {"name", "webhookUrl", "customVocabulary", "confidenceThreshold", "languageCode",
         "mode", "enableSeparateRecognitionPerChannel", "channelMetadata",
         "diarizationSpeakerCount", "enableSpeakerDiarization", "token", "detectEntities",
         "entities", "trackers", "enableSummary", "detectPhrases", *NOT_AVAILABLE,
         *NOT_AVAILABLE_LISTS}
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")

def _json(raw: str, name: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidParameter(f"{name} is not JSON", param=name) from None


def _bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no", ""):
        return False
    raise InvalidParameter(f"{name} must be true or false", param=name)


def _vocabulary(values: list[str]) -> list[str]:
    words: list[str] = []
    for value in values:
        value = value.strip()
        if value.startswith("["):
            items = _json(value, "customVocabulary")
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise InvalidParameter("customVocabulary must be a list of strings",
                                       param="customVocabulary")
            words.extend(items)
        else:
            words.extend(value.split(","))
    words = [w.strip() for w in words if w.strip()]
    if len(words) > 100 or any(len(w) > 100 for w in words):
        raise InvalidParameter("customVocabulary takes at most 100 phrases of 100 characters",
                               param="customVocabulary")
    return words


def _channel_metadata(value: str) -> list[dict[str, Any]]:
    items = _json(value, "channelMetadata")
    if isinstance(items, dict) and "channelMetadata" in items:
        items = items["channelMetadata"]
    if not isinstance(items, list) or not items:
        raise InvalidParameter("channelMetadata must be a non-empty list", param="channelMetadata")
    seen: set[int] = set()
    out = []
    for item in items:
        channel = item.get("channel") if isinstance(item, dict) else None
        speaker = item.get("speaker") if isinstance(item, dict) else None
        if isinstance(speaker, str):
            speaker = {"name": speaker}
        if (not isinstance(channel, int) or isinstance(channel, bool) or not 1 <= channel <= 8
                or not isinstance(speaker, dict) or channel in seen):
            raise InvalidParameter("each channelMetadata item needs a distinct channel (1-8) "
                                   "and a speaker object", param="channelMetadata")
        name, email = speaker.get("name"), speaker.get("email")
        if not all(v is None or (isinstance(v, str) and len(v) <= 200) for v in (name, email)):
            raise InvalidParameter("speaker name and email must be strings",
                                   param="channelMetadata")
        seen.add(channel)
        out.append({"channel": channel, "speaker": {"name": name, "email": email}})
    return out


def _custom_entities(raw: str | None) -> list[dict[str, str]]:
    """``entities``: JSON ``[{"customType": "...", "text": "..."}]`` (or the seed's object
    with an ``entities`` member)."""
    if raw is None or not raw.strip():
        return []
    items = _json(raw, "entities")
    if isinstance(items, dict):
        items = items.get("entities")
    if not isinstance(items, list) or len(items) > 100:
        raise InvalidParameter("entities must be a list of at most 100", param="entities")
    out = []
    for item in items:
        kind = item.get("customType") if isinstance(item, dict) else None
        text = item.get("text") if isinstance(item, dict) else None
        if not (isinstance(kind, str) and isinstance(text, str) and 0 < len(kind) <= 100
                and 0 < len(text.strip()) <= 200):
            raise InvalidParameter('each entity is {"customType": "...", "text": "..."}',
                                   param="entities")
        out.append({"customType": kind, "text": text.strip()})
    return out


def _trackers(raw: str) -> list[dict[str, Any]]:
    """``trackers``: JSON ``[{"name": "...", "vocabulary": ["phrase", ...]}]``."""
    items = _json(raw, "trackers")
    if not isinstance(items, list) or not 0 < len(items) <= 50:
        raise InvalidParameter("trackers must be a list of 1-50 trackers", param="trackers")
    out = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        vocabulary = item.get("vocabulary") if isinstance(item, dict) else None
        if not (isinstance(name, str) and 0 < len(name) <= 100 and isinstance(vocabulary, list)
                and 0 < len(vocabulary) <= 50
                and all(isinstance(v, str) and 0 < len(v.strip()) <= 200 for v in vocabulary)):
            raise InvalidParameter('each tracker is {"name": "...", "vocabulary": ["...", ...]} '
                                   "(at most 50 phrases)", param="trackers")
        out.append({"name": name, "vocabulary": [v.strip() for v in vocabulary]})
    return out


_BRACKETS = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\[\]]*\])+)$")


_SMALL_INT = re.compile(r"^[0-9]{1,9}$")


def _qs_value(node: Any) -> Any:
    """A bracket-built node as JSON: dicts keyed 0, 1, ... become lists, digits numbers."""
    if isinstance(node, dict):
        keys = list(node)
        if keys and all(_SMALL_INT.match(k) for k in keys):
            return [_qs_value(node[k]) for k in sorted(keys, key=int)]
        return {k: _qs_value(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_qs_value(v) for v in node]
    return int(node) if _SMALL_INT.match(node) else node


def expand_brackets(q: Any) -> Any:
    """The same parameters with bracket notation folded in, as Node's ``qs`` (the seed's own
    example) writes arrays and objects: ``customVocabulary[0]=a&customVocabulary[1]=b`` is the
    list ``a, b``; ``channelMetadata[0][speaker][name]=Ann`` is that JSON object."""
    from starlette.datastructures import ImmutableMultiDict

    plain: list[tuple[str, str]] = []
    trees: dict[str, Any] = {}
    pairs = [(key, value) for key in dict.fromkeys(q) for value in q.getlist(key)]
    for key, value in pairs:
        m = _BRACKETS.match(key)
        if m is None:
            plain.append((key, value))
            continue
        name, path = m.group(1), re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node = trees.setdefault(name, {})
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":  # name[]=a&name[]=b
                part = str(len(node))
            if not isinstance(node, dict):
                raise InvalidParameter(f"{key!r} mixes a value and an object", param=name)
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    for name, tree in trees.items():
        value = _qs_value(tree)
        if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            plain += [(name, str(v)) for v in value]  # a list of plain values: repeated keys
        else:
            plain.append((name, orjson.dumps(value).decode()))
    return ImmutableMultiDict(plain)


def parse_job_options(q: Any, languages: ModelLanguages,
                      ) -> tuple[dict[str, Any], str | None, str | None]:
    """Validated job options, the webhook URL (not yet checked against DNS) and the
    conversation name. ``q`` is the request's query parameters (a multi-dict)."""
    q = expand_brackets(q)
    for name in q:
        if name not in KNOWN:
            raise InvalidParameter(f"unknown query parameter {name!r}", param=name)
    for name, what in NOT_AVAILABLE.items():
        if name in q and _bool(q[name], name):
            raise InvalidParameter(f"{name}: {what} is not available on this server yet",
                                   param=name)
    for name, what in NOT_AVAILABLE_LISTS.items():
        if q.get(name, "").strip() not in ("", "[]"):
            raise InvalidParameter(f"{name}: {what} are not available on this server yet",
                                   param=name)
    options: dict[str, Any] = {}
    if _bool(q.get("enableSpeakerDiarization", "false"), "enableSpeakerDiarization"):
        options["enableSpeakerDiarization"] = True
        if "diarizationSpeakerCount" in q:
            try:
                count = int(q["diarizationSpeakerCount"])
            except ValueError:
                count = 0
            if not 1 <= count <= 8:
                raise InvalidParameter("diarizationSpeakerCount must be 1-8",
                                       param="diarizationSpeakerCount")
            options["diarizationSpeakerCount"] = count
    elif "diarizationSpeakerCount" in q:
        raise InvalidParameter("diarizationSpeakerCount needs enableSpeakerDiarization=true",
                               param="diarizationSpeakerCount")
    if _bool(q.get("detectEntities", "false"), "detectEntities"):
        options["detectEntities"] = True
        options["entities"] = _custom_entities(q.get("entities"))
    elif q.get("entities", "").strip() not in ("", "[]"):
        raise InvalidParameter("entities needs detectEntities=true", param="entities")
    if q.get("trackers", "").strip() not in ("", "[]"):
        options["trackers"] = _trackers(q["trackers"])
    if _bool(q.get("detectPhrases", "false"), "detectPhrases"):
        options["detectPhrases"] = True
    if _bool(q.get("enableSummary", "false"), "enableSummary"):
        options["enableSummary"] = True
    name = q.get("name")
    if name is not None and not 1 <= len(name.strip()) <= 256:
        raise InvalidParameter("name must be 1-256 characters", param="name")
    vocabulary = _vocabulary(q.getlist("customVocabulary"))
    if vocabulary:
        options["customVocabulary"] = vocabulary
        options["hotwords"] = ", ".join(vocabulary)
    if "confidenceThreshold" in q:
        try:
            threshold = float(q["confidenceThreshold"])
        except ValueError:
            threshold = -1.0
        if not 0.5 <= threshold <= 1.0:
            raise InvalidParameter("confidenceThreshold must be a number from 0.5 to 1.0",
                                   param="confidenceThreshold")
        options["confidenceThreshold"] = threshold
    language = q.get("languageCode")
    if language is not None:
        if not LANGUAGE.match(language):
            raise InvalidParameter("languageCode must look like en-US", param="languageCode")
        if not languages.supports(language):
            raise InvalidParameter(f"languageCode: {languages.refusal(language)}",
                                   param="languageCode")
        options["languageCode"] = language
        options["language"] = languages.base(language)
    elif languages.multilingual:
        options["language"] = "auto"  # no languageCode on a multilingual model: detect it
    mode = q.get("mode", "default")
    if mode not in ("default", "phone"):
        raise InvalidParameter("mode must be default or phone", param="mode")
    options["mode"] = mode
    per_channel = _bool(q.get("enableSeparateRecognitionPerChannel", "false"),
                        "enableSeparateRecognitionPerChannel")
    options["enableSeparateRecognitionPerChannel"] = per_channel
    if per_channel and options.get("enableSpeakerDiarization"):
        raise InvalidParameter("use enableSeparateRecognitionPerChannel (a speaker per channel) "
                               "or enableSpeakerDiarization, not both",
                               param="enableSpeakerDiarization")
    if "channelMetadata" in q:
        if not per_channel:
            raise InvalidParameter("channelMetadata needs enableSeparateRecognitionPerChannel"
                                   "=true", param="channelMetadata")
        options["channelMetadata"] = _channel_metadata(q["channelMetadata"])
    webhook = q.get("webhookUrl") or None
    return options, webhook, (name.strip() if name else None)
