"""Seed 004's wire shapes: the stream-job start request, its options, and segment callbacks.

Options this server does not implement yet are refused with a 400 that names them; none is
silently ignored. Times in callbacks: segment bounds as strings of seconds, words in ms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from earmark.core import SAMPLE_RATE
from earmark.core.events import Word
from earmark.core.languages import ModelLanguages
from earmark.core.segments import Segment
from earmark.core.severity import LEVEL_SCORE, level_of, severity
from earmark.core.text_options import TextOptions, redact_kinds
from earmark.errors import InvalidParameter
from earmark.inference.tagger import SafetyLabel
from earmark.inference.understanding import Entity, Highlight, Sentiment

# Status codes of the callbacks (seed 004).
SUCCESS, ERROR, USER_STOPPED, NO_DATA, CAPACITY = 0, -1, 14, 15, 16

# Options that need the speech-understanding work: refused when turned on.
NOT_YET_FLAGS: tuple[str, ...] = ()
# disfluencies: Whisper learnt to drop fillers; a prompt that has them makes it keep them
# ("um", "uh"). Measured on espeak lines with 9 fillers: 5 kept with it, 0 without.
FILLER_PROMPT = "Umm, let me think like, hmm... Okay, here's what I'm, like, thinking."
NOT_YET_VALUES = ("speech_understanding",)
SUMMARY_TYPES = ("paragraph", "bullets", "bullets_verbose", "gist", "headline")
# The entity detector's labels (spaCy's, and the PII patterns') as AssemblyAI names them; a
# label it has no name for is sent lower-cased.
ENTITY_TYPES = {"PERSON": "person_name", "GPE": "location", "LOC": "location",
                "FAC": "location", "ORG": "organization", "DATE": "date", "TIME": "time",
                "MONEY": "money_amount", "NORP": "nationality", "LANGUAGE": "language",
                "EVENT": "event", "PERCENT": "statistics", "QUANTITY": "statistics",
                "CARDINAL": "number_sequence", "NUMBER": "number_sequence",
                "EMAIL_ADDRESS": "email_address", "PHONE_NUMBER": "phone_number",
                "CREDIT_CARD_NUMBER": "credit_card_number",
                "US_SOCIAL_SECURITY_NUMBER": "us_social_security_number",
                "PERSON_NAME": "person_name", "LOCATION": "location",
                "ORGANIZATION": "organization"}
MAX_TOPICS = 100
MAX_SPEAKERS = 10
_PUNCT = re.compile(r"[^\w\s'-]|(?<!\w)['-]|['-](?!\w)")


class StreamStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _null_is_the_default(cls, data: Any) -> Any:
        # Hosted-API clients send every field, null where unset: null means the default.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    audio_url: str = Field(min_length=1, max_length=4096,
                           description="rtmp://, rtsp://, HLS .m3u8 or HTTP media URL")
    language_code: str | None = Field(None, max_length=16)
    punctuate: bool = False
    format_text: bool = False
    language_detection: bool = False
    language_confidence_threshold: float = Field(0.0, ge=0, le=1)
    audio_start_from: int = Field(0, ge=0, description="ms of stream to skip")
    audio_end_at: int = Field(0, ge=0, description="stop at this ms of stream (0: never)")
    multichannel: bool = False
    speech_models: list[str] | None = Field(None, description="accepted; this server runs "
                                            "its one loaded model, named in each callback's "
                                            "speech_model")
    speech_threshold: float = Field(0.0, ge=0, le=1, description="VAD threshold (0: default)")
    disfluencies: bool = False
    speaker_labels: bool = False
    speakers_expected: int = Field(0, ge=0, le=32)
    sentiment_analysis: bool = False
    entity_detection: bool = False
    auto_highlights: bool = False
    content_safety: bool = False
    iab_categories: bool = False
    auto_chapters: bool = False
    summarization: bool = False
    summary_model: str | None = None
    summary_type: str | None = None
    custom_topics: bool = False
    topics: list[str] | None = None
    redact_pii: bool = False
    redact_pii_sub: str | None = None
    redact_pii_policies: list[str] | None = None
    redact_pii_audio: bool = False
    redact_pii_audio_quality: str | None = None
    filter_profanity: bool = False
    custom_spelling: list[dict[str, Any]] | None = None
    speech_understanding: dict[str, Any] | None = None


@dataclass(frozen=True)
class StreamOptions:
    audio_url: str
    language_code: str
    punctuate: bool
    format_text: bool
    start_from_s: float
    end_at_s: float | None
    vad_threshold: float | None
    spelling: dict[str, str] = field(default_factory=dict)  # lower-case word -> replacement
    text: TextOptions = TextOptions()  # redaction, profanity, sentiment, entities
    content_safety: bool = False
    summarization: bool = False  # a rolling extractive summary of the stream so far
    summary_type: str = "paragraph"  # paragraph, bullets, headline or gist
    auto_chapters: bool = False  # chapters of the stream so far
    speaker_labels: bool = False  # words and utterances carry speakers A, B, ...
    speakers_expected: int | None = None  # at most this many (None: estimated)
    iab_categories: bool = False  # IAB Content Taxonomy labels per segment and so far
    topics: tuple[str, ...] = ()  # custom topics (custom_topics), reported the same way
    redacted_audio: str | None = None  # "mp3" or "wav": each segment's audio, PII beeped
    multichannel: bool = False  # each channel of the source transcribed on its own
    # A segment whose detected language is less sure than this is an error callback (-1).
    language_threshold: float | None = None
    ignored: tuple[str, ...] = ()  # options sent for a feature left off: no effect
    disfluencies: bool = False  # keep fillers (um, uh): the decoder is prompted with them


@dataclass(frozen=True)
class Chapter:
    """One chapter of the stream so far; times in samples of stream time."""

    start_sample: int
    end_sample: int
    headline: str  # its most representative sentence
    gist: str  # its top key phrase (YAKE), or the headline's first words
    summary: str  # its extractive summary


def stream_options(req: StreamStartRequest, languages: ModelLanguages) -> StreamOptions:
    """Validates a start request. Raises InvalidParameter naming the first bad option.

    An option that only refines a feature left off (``summary_type`` without
    ``summarization``, ``topics`` without ``custom_topics``...) has no effect, as on the
    hosted API, whose own example sends them all with placeholders; such options are named
    in ``StreamOptions.ignored`` (and in the start answer)."""
    ignored: list[str] = []

    def unused(*names: str) -> None:
        ignored.extend(n for n in names if getattr(req, n) not in (None, 0, 0.0, [], {}, ""))

    for name in NOT_YET_FLAGS:
        if getattr(req, name):
            raise InvalidParameter(f"{name} is not available on this server yet", param=name)
    for name in NOT_YET_VALUES:
        value = getattr(req, name)
        if value:
            asked = value.get("request") if isinstance(value.get("request"), dict) else value
            raise InvalidParameter(
                f"{name} ({', '.join(sorted(asked)) or 'its request'}) is not available on "
                "this server: translation, speaker identification and custom formatting are "
                "the hosted API's LLM features", param=name)
    if not req.summarization:
        unused("summary_model", "summary_type")
    elif req.summary_model or req.summary_type:
        if req.summary_type not in (None, *SUMMARY_TYPES):
            raise InvalidParameter(f"summary_type is one of {', '.join(SUMMARY_TYPES)}",
                                   param="summary_type")
    if not req.speaker_labels:
        unused("speakers_expected")
    elif req.speakers_expected > MAX_SPEAKERS:
        raise InvalidParameter(f"speakers_expected is at most {MAX_SPEAKERS}",
                               param="speakers_expected")
    if not req.language_detection:
        unused("language_confidence_threshold")
    declared = languages.base(req.language_code) if req.language_code else None
    if req.language_detection and not languages.multilingual and declared == languages.default:
        # The hosted API takes both. On an English-only model that is told the stream is
        # English there is nothing to detect: the declared language is what runs.
        ignored.append("language_detection")
        unused("language_confidence_threshold")
        language = declared
    elif req.language_detection:
        if not languages.multilingual:
            raise InvalidParameter(f"language_detection: {languages.refusal('auto')}",
                                   param="language_detection")
        # With language_code too, detection decides (the code is only a hint the hosted
        # API may use; Whisper's detection needs none).
        language = "auto"
    else:
        language = languages.base(req.language_code or languages.default)
        if not languages.supports(language):
            raise InvalidParameter(f"language_code: {languages.refusal(req.language_code or '')}",
                                   param="language_code")
    topics: tuple[str, ...] = ()
    if req.custom_topics:
        topics = tuple(dict.fromkeys(t.strip() for t in req.topics or () if t.strip()))
        if not topics or len(topics) > MAX_TOPICS or any(len(t) > 100 for t in topics):
            raise InvalidParameter(f"custom_topics needs topics: 1-{MAX_TOPICS} phrases of at "
                                   "most 100 characters", param="topics")
    else:
        unused("topics")
    if req.audio_end_at and req.audio_end_at <= req.audio_start_from:
        raise InvalidParameter("audio_end_at must be after audio_start_from",
                               param="audio_end_at")
    spelling: dict[str, str] = {}
    for item in req.custom_spelling or ():
        if not item:
            continue  # {}: the hosted example's placeholder item
        sources, target = item.get("from"), item.get("to")
        if (not isinstance(sources, list) or not sources or not isinstance(target, str)
                or not all(isinstance(s, str) and s.strip() for s in sources)):
            raise InvalidParameter('custom_spelling items are {"from": ["word", ...], '
                                   '"to": "word"}', param="custom_spelling")
        for s in sources:
            key = " ".join(_PUNCT.sub("", s).lower().split())
            if key:
                spelling[key] = target
    kinds: frozenset[str] = frozenset()
    if req.redact_pii:
        try:
            kinds = redact_kinds(req.redact_pii_policies or ["pii"])
        except ValueError as exc:
            raise InvalidParameter(f"redact_pii_policies: cannot redact {exc}",
                                   param="redact_pii_policies") from None
    else:
        unused("redact_pii_policies", "redact_pii_sub")
    redacted_audio = None
    if req.redact_pii_audio:
        if not req.redact_pii:
            raise InvalidParameter("redact_pii_audio needs redact_pii", param="redact_pii_audio")
        redacted_audio = req.redact_pii_audio_quality or "mp3"
        if redacted_audio not in ("mp3", "wav"):
            raise InvalidParameter("redact_pii_audio_quality is mp3 or wav",
                                   param="redact_pii_audio_quality")
    else:
        unused("redact_pii_audio_quality")
    if req.multichannel and req.speaker_labels:
        raise InvalidParameter("multichannel gives each channel its own words (a speaker per "
                               "channel); it cannot be combined with speaker_labels",
                               param="multichannel")
    if req.multichannel and req.redact_pii_audio:
        raise InvalidParameter("redact_pii_audio is for one-channel streams; it cannot be "
                               "combined with multichannel", param="multichannel")
    sub = (req.redact_pii_sub if req.redact_pii else None) or "entity_name"
    if sub not in ("entity_name", "hash"):
        raise InvalidParameter("redact_pii_sub is entity_name or hash", param="redact_pii_sub")
    text = TextOptions(profanity=req.filter_profanity, redact=kinds, redact_sub=sub,
                       sentiment=req.sentiment_analysis, entities=req.entity_detection,
                       highlights=req.auto_highlights)
    return StreamOptions(req.audio_url, language, req.punctuate, req.format_text,
                         req.audio_start_from / 1000, (req.audio_end_at / 1000) or None,
                         req.speech_threshold or None, spelling, text, req.content_safety,
                         req.summarization,
                         (req.summary_type if req.summarization else None) or "paragraph",
                         req.auto_chapters, req.speaker_labels,
                         (req.speakers_expected if req.speaker_labels else 0) or None,
                         req.iab_categories, topics, redacted_audio, req.multichannel,
                         (req.language_confidence_threshold if req.language_detection
                          else 0) or None, tuple(ignored), req.disfluencies)


def _bare(word: Word) -> str:
    return _PUNCT.sub("", word.text.strip()).lower()


def _spelled(words: Sequence[Word], options: StreamOptions) -> list[tuple[Word, str | None]]:
    """Each word with its custom spelling (None: none). A ``from`` of several words matches
    them in a row and becomes one word spanning them, as the hosted API does."""
    phrases = sorted(((k.split(), v) for k, v in options.spelling.items()),
                     key=lambda kv: -len(kv[0]))
    out: list[tuple[Word, str | None]] = []
    i = 0
    while i < len(words):
        for keys, target in phrases:
            run = words[i:i + len(keys)]
            if len(run) == len(keys) and [_bare(w) for w in run] == keys:
                merged = replace(run[0], text=" ".join(w.text.strip() for w in run),
                                 end_sample=run[-1].end_sample,
                                 probability=min(w.probability for w in run))
                out.append((merged, target))
                i += len(keys)
                break
        else:
            out.append((words[i], None))
            i += 1
    return out


def _word_text(word: Word, options: StreamOptions, spelled: str | None = None) -> str:
    text = word.text.strip()
    if text.startswith(("[", "##")) or "*" in text:
        # Redaction labels and masks stay as they are; only trailing punctuation may go.
        return text if options.punctuate else text.rstrip(".,!?;:")
    if spelled is not None:
        # The replacement is written as given (case and punctuation kept), after the
        # formatting; the punctuation the word had around it follows the same rules.
        trail = text[len(text.rstrip(".,!?;:")):] if options.punctuate else ""
        return spelled + trail
    if not options.punctuate:
        text = _PUNCT.sub("", text)
    if not options.format_text:
        text = text.lower()
    return text


def _ms(sample: int, offset_s: float) -> int:
    return round(sample * 1000 / SAMPLE_RATE + offset_s * 1000)


def segment_callback(task_id: str, segment: Segment, options: StreamOptions, *,
                     status: int = SUCCESS, message: str = "success",
                     sentiment: Sequence[SentenceSentiment] = (),
                     language: str | None = None,
                     highlights: Sequence[Highlight] = (),
                     safety: Sequence[SafetyLabel] = (),
                     entities: Sequence[Entity] = (),
                     summary: str | None = None,
                     chapters: tuple[Chapter, ...] = (),
                     topics: SegmentTopics | None = None,
                     redacted_audio_url: str | None = None,
                     channels: int = 1,
                     language_confidence: float | None = None,
                     speech_model: str | None = None,
                     partial: bool = False) -> dict[str, Any]:
    """One callback body. Times are stream time (``audio_start_from`` counts from 0);
    ``segment`` holds the words after the text options."""
    offset = options.start_from_s
    # Channels decode on their own: their words are put in time order here.
    ordered = sorted(segment.words, key=lambda w: w.start_sample) if options.multichannel \
        else segment.words
    words = [{"text": t, "start": _ms(w.start_sample, offset), "end": _ms(w.end_sample, offset),
              "confidence": round(w.probability, 3),
              "speaker": speaker_name(w.speaker) if options.speaker_labels
              else str(w.channel + 1) if options.multichannel else None,
              **({"channel": str(w.channel + 1)} if options.multichannel else {})}
             for w, spelled in _spelled(ordered, options)
             if (t := _word_text(w, options, spelled))]
    confidence = round(sum(w["confidence"] for w in words) / len(words), 3) if words else 0.0
    transcript = {
        "audio_url": options.audio_url, "id": f"{task_id}-{segment.index}",
        "status": "completed", "language_code": language or options.language_code,
        "confidence": confidence, "text": " ".join(w["text"] for w in words), "words": words,
        "utterances": None, "speaker_labels": options.speaker_labels,
        "speakers_expected": options.speakers_expected,
        "sentiment_analysis": False, "auto_highlights": False,
        "auto_highlights_result": None, "iab_categories": False, "content_safety": False,
        "summary": None, "chapters": None,
        "redact_pii": bool(options.text.redact), "filter_profanity": options.text.profanity,
        "speech_model": speech_model,
    }
    if options.language_code == "auto":
        transcript["language_detection"] = True
        transcript["language_confidence"] = None if language_confidence is None \
            else round(language_confidence, 4)
        transcript["language_confidence_threshold"] = options.language_threshold
    if options.speaker_labels or options.multichannel:
        transcript["utterances"] = utterances(words)
    if options.multichannel:
        transcript["multichannel"] = True
        transcript["audio_channels"] = channels
    if options.redacted_audio:
        transcript["redact_pii_audio"] = True
        transcript["redact_pii_audio_quality"] = options.redacted_audio
        transcript["redacted_audio_url"] = redacted_audio_url
    if options.text.sentiment:
        transcript["sentiment_analysis"] = True
        transcript["sentiment_analysis_results"] = _sentiment_results(
            sentiment, segment.words, options) if words else []
    if options.text.highlights:
        transcript["auto_highlights"] = True
        transcript["auto_highlights_result"] = {"status": "success", "results": [
            {"count": len(h.times), "rank": h.rank, "text": h.text,
             "timestamps": [{"start": _ms(a, offset), "end": _ms(b, offset)}
                            for a, b in h.times]}
            for h in highlights]}
    if options.content_safety:
        transcript["content_safety"] = True
        transcript["content_safety_labels"] = _safety_labels(transcript["text"], words, safety)
    if options.summarization:
        transcript["summarization"] = True
        transcript["summary"] = summary or ""
    if options.auto_chapters:
        transcript["auto_chapters"] = True
        transcript["chapters"] = [{"start": _ms(c.start_sample, offset),
                                   "end": _ms(c.end_sample, offset), "headline": c.headline,
                                   "gist": c.gist, "summary": c.summary} for c in chapters]
    if options.iab_categories:
        transcript["iab_categories"] = True
        transcript["iab_categories_result"] = _topic_result(
            transcript["text"], words, topics.iab if topics else (),
            topics.iab_so_far if topics else {})
    if options.topics:
        transcript["custom_topics"] = True
        transcript["topics"] = list(options.topics)
        transcript["custom_topics_result"] = _topic_result(
            transcript["text"], words, topics.custom if topics else (),
            topics.custom_so_far if topics else {})
    if options.text.entities:
        transcript["entity_detection"] = True
        transcript["entities"] = [{"entity_type": ENTITY_TYPES.get(e.label, e.label.lower()),
                                   "text": e.text, "start": _ms(e.start_sample, offset),
                                   "end": _ms(e.end_sample, offset)} for e in entities]
    if partial:  # the open segment so far: its final callback follows with the same index
        transcript["status"] = "processing"
    body = _envelope(task_id, segment.index, segment.start_sample, segment.end_sample, offset,
                     status, message, transcript)
    body["data"]["message_type"] = "PartialTranscript" if partial else "FinalTranscript"
    return body


@dataclass(frozen=True)
class SegmentTopics:
    """Topic labels of one segment (label, relevance) and of the stream so far."""

    iab: tuple[tuple[str, float], ...] = ()
    custom: tuple[tuple[str, float], ...] = ()
    iab_so_far: dict[str, float] = field(default_factory=dict)
    custom_so_far: dict[str, float] = field(default_factory=dict)


def _topic_result(text: str, words: list[dict[str, Any]], labels: tuple[tuple[str, float], ...],
                  so_far: dict[str, float]) -> dict[str, Any]:
    """AssemblyAI's ``iab_categories_result`` shape: this segment's labels, the stream's."""
    results = [{"text": text, "labels": [{"relevance": r, "label": name} for name, r in labels],
                "timestamp": {"start": words[0]["start"], "end": words[-1]["end"]}}
               ] if labels and words else []
    return {"status": "success", "results": results, "summary": so_far}


def speaker_name(label: int | None) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA" (AssemblyAI's letters); no label is "A"."""
    n, name = (label or 0) + 1, ""
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def utterances(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of consecutive words by one speaker."""
    out: list[dict[str, Any]] = []
    for w in words:
        if not out or out[-1]["speaker"] != w["speaker"]:
            out.append({"speaker": w["speaker"], "start": w["start"], "words": []})
            if "channel" in w:
                out[-1]["channel"] = w["channel"]
        out[-1]["words"].append(w)
        out[-1]["end"] = w["end"]
    for u in out:
        u["text"] = " ".join(w["text"] for w in u["words"])
        u["confidence"] = round(sum(w["confidence"] for w in u["words"]) / len(u["words"]), 3)
    return out


def sentences_of(words: Sequence[Word]) -> list[tuple[Word, ...]]:
    """The words in sentences: each ends at a word ending with . ? or ! (or at the end)."""
    out: list[tuple[Word, ...]] = []
    current: list[Word] = []
    for w in words:
        current.append(w)
        if w.text.strip().rstrip("\"')\u201d").endswith((".", "?", "!")):
            out.append(tuple(current))
            current = []
    if current:
        out.append(tuple(current))
    return out


def _safety_labels(text: str, words: list[dict[str, Any]],
                   safety: Sequence[SafetyLabel]) -> dict[str, Any]:
    """AssemblyAI's ``content_safety_labels``: one result for the segment's text, each label
    with its severity (``core/severity``), and per label the share of results at each level."""
    if not (safety and words):
        return {"status": "success", "results": [], "summary": {},
                "severity_score_summary": {}}
    graded = [(s.label, s.confidence, severity(s.label, text)) for s in safety]
    return {
        "status": "success",
        "results": [{"text": text,
                     "labels": [{"label": name, "confidence": score, "severity": grade}
                                for name, score, grade in graded],
                     "timestamp": {"start": words[0]["start"], "end": words[-1]["end"]}}],
        "summary": {name: score for name, score, _ in graded},
        "severity_score_summary": {
            name: {level: float(level_of(grade) == level) for level in LEVEL_SCORE}
            for name, _, grade in graded},
    }


@dataclass(frozen=True)
class SentenceSentiment:
    """The sentiment of one sentence of a segment: its first ``words`` words after the
    sentences before it."""

    words: int
    sentiment: Sentiment


def _sentiment_results(sentiment: Sequence[SentenceSentiment], said: Sequence[Word],
                       options: StreamOptions) -> list[dict[str, Any]]:
    """One result per sentence, in the order of ``said``."""
    results, at = [], 0
    offset = options.start_from_s
    for found in sentiment:
        part = said[at:at + found.words]
        at += found.words
        label, score = found.sentiment.label, found.sentiment.score
        shown = [(w, t) for w, spelled in _spelled(part, options)
                 if (t := _word_text(w, options, spelled))]
        if not shown:
            continue
        speakers = [{"speaker": speaker_name(w.speaker) if options.speaker_labels else None}
                    for w, _ in shown]
        results.append({"text": " ".join(t for _, t in shown),
                        "start": _ms(shown[0][0].start_sample, offset),
                        "end": _ms(shown[-1][0].end_sample, offset),
                        "sentiment": label.upper(), "confidence": round(abs(score), 3),
                        "speaker": _main_speaker(speakers)})
    return results


def _main_speaker(words: list[dict[str, Any]]) -> str | None:
    said = [w["speaker"] for w in words if w["speaker"] is not None]
    return max(set(said), key=said.count) if said else None


def error_callback(task_id: str, segment: Segment, options: StreamOptions,
                   message: str) -> dict[str, Any]:
    """A segment that could not be given (status -1); the stream goes on."""
    return _envelope(task_id, segment.index, segment.start_sample, segment.end_sample,
                     options.start_from_s, ERROR, message, None)


def stop_callback(task_id: str, index: int, start_sample: int, end_sample: int,
                  options: StreamOptions, status: int, message: str) -> dict[str, Any]:
    """The last callback of a stopped task (14, 15, 16, -1): no transcript."""
    return _envelope(task_id, index, start_sample, end_sample, options.start_from_s, status,
                     message, None)


def _envelope(task_id: str, index: int, start_sample: int, end_sample: int, offset_s: float,
              status: int, message: str, transcript: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "code": 200, "message": "SUCCESS", "task_id": task_id,
        "data": {
            "segment_index": index,
            "segment_start_time": f"{start_sample / SAMPLE_RATE + offset_s:.3f}",
            "segment_end_time": f"{end_sample / SAMPLE_RATE + offset_s:.3f}",
            "status": status, "message": message, "transcript": transcript,
        },
    }
