"""Seed 003's wire shapes (async audio jobs): response models and the message encoder.

Stored results keep file-relative seconds; this module places them on the conversation's
timeline (a PUT-appended file starts where the earlier audio ended) and in wall-clock time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from earmark.store.jobs import Job


class JobCreated(BaseModel):
    conversationId: str  # noqa: N815 - the seed's field names
    jobId: str  # noqa: N815


class JobOut(BaseModel):
    id: str
    status: str = Field(description="scheduled | in_progress | completed | failed")
    conversationId: str  # noqa: N815
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    durationSeconds: float  # noqa: N815
    reason: str | None = Field(None, description="why the job failed")


class Speaker(BaseModel):
    id: str | None = None
    name: str | None = None
    userId: str | None = None  # noqa: N815 - the speaker's email from channelMetadata


class WordOut(BaseModel):
    word: str
    startTime: str  # noqa: N815
    endTime: str  # noqa: N815
    timeOffset: float = Field(description="seconds from the conversation start")  # noqa: N815
    duration: float
    score: float


class MessageRef(BaseModel):
    id: str
    text: str
    offset: int = Field(description="character offset of the entity in the message text")


class Polarity(BaseModel):
    score: float = Field(description="VADER compound score, -1 to 1")


class SentimentOut(BaseModel):
    polarity: Polarity
    suggested: str = Field(description="positive | negative | neutral")


class MessageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    text: str
    from_: Speaker = Field(alias="from")
    startTime: str  # noqa: N815
    endTime: str  # noqa: N815
    timeOffset: float  # noqa: N815
    duration: float
    conversationId: str  # noqa: N815
    channel: int
    phrases: list[Any]
    words: list[WordOut]
    sentiment: SentimentOut | None = Field(None, description="with ?sentiment=true")


class MessagesOut(BaseModel):
    messages: list[MessageOut]
    incomplete: bool | None = Field(None, description="true while jobs are still running")
    pendingJobs: list[str] | None = None  # noqa: N815


class EntityOut(BaseModel):
    type: str = Field(description="spaCy's label (person, org, gpe, date, ...), a pattern's "
                      "(email_address, phone_number, ...) or your customType")
    value: str
    text: str
    messageRefs: list[MessageRef]  # noqa: N815


class EntitiesOut(BaseModel):
    entities: list[EntityOut]


def entities_body(messages: list[MessageOut], results: list[list[list[str]]]) -> EntitiesOut:
    """Groups each message's stored [type, text] entities by (type, value)."""
    grouped: dict[tuple[str, str], EntityOut] = {}
    for message, found in zip(messages, results, strict=True):
        for kind, text in found:
            key = (kind, text.lower())
            entity = grouped.setdefault(key, EntityOut(type=kind, value=text, text=text,
                                                       messageRefs=[]))
            entity.messageRefs.append(MessageRef(id=message.id, text=message.text,
                                                 offset=max(0, message.text.find(text))))
    return EntitiesOut(entities=list(grouped.values()))


class ConversationOut(BaseModel):
    id: str
    name: str
    startTime: str  # noqa: N815
    durationSeconds: float  # noqa: N815
    jobs: list[JobOut]


class TopicOut(BaseModel):
    id: str
    text: str
    type: str
    score: float
    messageIds: list[str]  # noqa: N815
    parentRefs: list[Any]  # noqa: N815


class TopicsOut(BaseModel):
    topics: list[TopicOut]


class Phrase(BaseModel):
    type: str = Field(description="action_phrase")
    text: str


class InsightOut(BaseModel):
    """A question, action item or follow-up (Symbl's Conversation API shape)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    text: str
    type: str = Field(description="question, action_item or follow_up")
    score: float = Field(description="the rule's precision on labelled sentences")
    messageIds: list[str]  # noqa: N815
    from_: Speaker = Field(alias="from")
    entities: list[Any] | None = None
    phrases: list[Phrase] | None = None
    definitive: bool | None = Field(None, description="a commitment, not a suggestion")
    assignee: Speaker | None = Field(None, description="the speaker, when they take it on")


class QuestionsOut(BaseModel):
    questions: list[InsightOut]


class ActionItemsOut(BaseModel):
    actionItems: list[InsightOut]  # noqa: N815


class FollowUpsOut(BaseModel):
    followUps: list[InsightOut]  # noqa: N815


def insights_body(messages: list[MessageOut], found: list[Any], kind: str) -> list[InsightOut]:
    """The insights of one ``kind`` (``core.insights.Insight``) over ``messages``."""
    out = []
    for k, insight in enumerate(i for i in found if i.kind == kind):
        message = messages[insight.message]
        item = InsightOut(id=f"{kind}-{k}", text=insight.text, type=kind,
                          score=insight.score, messageIds=[message.id], from_=message.from_)
        if kind != "question":
            item.entities = []
            item.phrases = [Phrase(type="action_phrase", text=insight.phrase)]
            item.definitive = insight.definitive
            item.assignee = message.from_ if insight.first_person else None
        out.append(item)
    return out


class SummaryItem(BaseModel):
    id: str
    text: str
    messageRefs: list[MessageRef]  # noqa: N815


class SummaryOut(BaseModel):
    summary: list[SummaryItem]


class ChapterOut(BaseModel):
    start: float = Field(description="seconds from the conversation start")
    end: float
    gist: str = Field(description="the chapter's most representative sentence")
    messageIds: list[str]  # noqa: N815


class ChaptersOut(BaseModel):
    chapters: list[ChapterOut]


class TrackerMatch(BaseModel):
    type: str = Field(description="vocabulary")
    value: str = Field(description="the tracker phrase that matched")
    messageRefs: list[MessageRef]  # noqa: N815
    insightRefs: list[Any]  # noqa: N815


class TrackerOut(BaseModel):
    id: str
    name: str
    matches: list[TrackerMatch]


class TrackersOut(BaseModel):
    trackers: list[TrackerOut]


TRACKER_SIMILARITY = 0.6  # cosine, all-MiniLM-L6-v2, phrase vs a window of the sentence


def tracker_windows(text: str, phrase: str) -> list[str]:
    """Word windows of a message about as long as the phrase (its length and two more): a
    phrase is compared with what was said around it, not with the whole sentence."""
    words = text.split()
    n = len(phrase.split())
    out = []
    for k in (n, n + 2):
        if k >= len(words):
            out.append(text)
            continue
        out.extend(" ".join(words[i:i + k]) for i in range(len(words) - k + 1))
    return out


def match_trackers(trackers: list[dict[str, Any]], messages: list[MessageOut],
                   vectors: dict[str, Any]) -> list[TrackerOut]:
    """A phrase matches a message when the message contains it (any case) or a window of it
    says the same thing (cosine similarity at least TRACKER_SIMILARITY). ``vectors`` has a
    unit embedding for every phrase and every window from ``tracker_windows``."""
    out = []
    for k, tracker in enumerate(trackers):
        matches = []
        for phrase in tracker["vocabulary"]:
            refs = []
            for m in messages:
                at = m.text.lower().find(phrase.lower())
                best = max(float(vectors[w] @ vectors[phrase])
                           for w in tracker_windows(m.text, phrase))
                if at >= 0 or best >= TRACKER_SIMILARITY:
                    refs.append(MessageRef(id=m.id, text=m.text, offset=max(at, 0)))
            if refs:
                matches.append(TrackerMatch(type="vocabulary", value=phrase, messageRefs=refs,
                                            insightRefs=[]))
        out.append(TrackerOut(id=f"tracker-{k}", name=tracker["name"], matches=matches))
    return out


class AttemptOut(BaseModel):
    at: float
    statusCode: int | None  # noqa: N815
    error: str | None
    durationMs: float  # noqa: N815


class DeliveryOut(BaseModel):
    id: int
    url: str
    body: str = Field(description="the exact bytes sent and signed")
    state: str = Field(description="pending | delivered | abandoned")
    created: float
    deliveredAt: float | None  # noqa: N815
    nextAttemptAt: float | None  # noqa: N815
    attempts: list[AttemptOut]


class WebhooksOut(BaseModel):
    jobId: str  # noqa: N815
    deliveries: list[DeliveryOut]


class WebhookSecretOut(BaseModel):
    secret: str
    signatureHeader: str  # noqa: N815
    timestampHeader: str  # noqa: N815
    scheme: str


class Deleted(BaseModel):
    message: str


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def job_body(job: Job) -> JobOut:
    return JobOut(id=job.id, status=job.status.value, conversationId=job.conversation_id,
                  createdAt=iso(job.created), updatedAt=iso(job.updated),
                  durationSeconds=round(job.duration_s, 3), reason=job.reason)


def speaker(job: Job, channel: int, diarized: int | None = None) -> Speaker:
    """channelMetadata's speaker for a channel, the diarized speaker, or nothing."""
    if diarized is not None:
        return Speaker(id=f"speaker-{diarized + 1}", name=f"Speaker {diarized + 1}")
    if not job.options.get("enableSeparateRecognitionPerChannel"):
        return Speaker()
    for item in job.options.get("channelMetadata", ()):
        if item["channel"] == channel:
            who = item["speaker"]
            return Speaker(id=f"channel-{channel}", name=who.get("name") or f"Channel {channel}",
                           userId=who.get("email"))
    return Speaker(id=f"channel-{channel}", name=f"Channel {channel}")


def messages_body(conversation_created: float, conversation_id: str, jobs: list[Job],
                  results: dict[str, list[dict[str, Any]]]) -> list[MessageOut]:
    out: list[MessageOut] = []
    for job in jobs:
        base = conversation_created + job.offset_s
        for k, m in enumerate(results.get(job.id, ())):
            start, end = job.offset_s + m["start_s"], job.offset_s + m["end_s"]
            out.append(MessageOut(
                id=f"{job.id}-{k}", text=m["text"],
                from_=speaker(job, m["channel"], m.get("speaker")),
                startTime=iso(conversation_created + start),
                endTime=iso(conversation_created + end), timeOffset=round(start, 3),
                duration=round(end - start, 3), conversationId=conversation_id,
                channel=m["channel"], phrases=[],
                words=[WordOut(word=text, startTime=iso(base + ws), endTime=iso(base + we),
                               timeOffset=round(job.offset_s + ws, 3),
                               duration=round(we - ws, 3), score=score)
                       for text, ws, we, score in m["words"]]))
    return out
