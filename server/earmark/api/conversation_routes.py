"""Conversation results of file jobs (seed 003): messages, entities, topics, summary, insights
(questions, action items, follow-ups), chapters and trackers, computed from the stored
transcript when asked."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Query, Request

from earmark.api.auth import request_owner
from earmark.api.job_routes import job_store
from earmark.api.services import services
from earmark.core.insights import ACTION_ITEM, FOLLOW_UP, QUESTION
from earmark.core.insights import find as find_insights
from earmark.core.summary import chapters_of
from earmark.dialects.file_jobs import (
    ActionItemsOut,
    ChapterOut,
    ChaptersOut,
    ConversationOut,
    EntitiesOut,
    FollowUpsOut,
    MessagesOut,
    Phrase,
    Polarity,
    QuestionsOut,
    SentimentOut,
    SummaryOut,
    TopicsOut,
    TrackersOut,
    entities_body,
    insights_body,
    iso,
    job_body,
    match_trackers,
    messages_body,
    tracker_windows,
)
from earmark.errors import (
    NotReady,
)
from earmark.store.jobs import ACTIVE

logger = logging.getLogger(__name__)
router = APIRouter()
CLEAN: dict[str, Any] = {"response_model_exclude_none": True}
TOPIC_PASSAGE_WORDS = 120


async def _loaded(request: Request, conversation_id: str) -> tuple[list[Any], Any, list[Any]]:
    """(jobs, stored results, messages) of one of the caller's conversations."""
    store, owner = job_store(request), request_owner(request)
    conv = await asyncio.to_thread(store.get_conversation, owner, conversation_id)
    jobs = await asyncio.to_thread(store.conversation_jobs, owner, conversation_id)
    results = await asyncio.to_thread(store.results, conversation_id)
    return jobs, results, messages_body(conv.created, conversation_id, jobs, results)


@router.get("/v1/conversations/{conversationId}", summary="A conversation and its jobs",
            response_model=ConversationOut, **CLEAN)
async def conversation(request: Request, conversationId: str) -> dict[str, Any]:  # noqa: N803
    store = job_store(request)
    owner = request_owner(request)
    conv = await asyncio.to_thread(store.get_conversation, owner, conversationId)
    jobs = await asyncio.to_thread(store.conversation_jobs, owner, conversationId)
    return {"id": conv.id, "name": conv.name, "startTime": iso(conv.created),
            "durationSeconds": round(conv.duration_s, 3), "jobs": [job_body(j) for j in jobs]}


@router.get("/v1/conversations/{conversationId}/messages",
            summary="The transcript, one message per sentence", response_model=MessagesOut,
            **CLEAN)
async def messages(request: Request, conversationId: str,  # noqa: N803
                   sentiment: bool = Query(False, description="add each message's sentiment"),
                   ) -> dict[str, Any]:
    jobs, results, out = await _loaded(request, conversationId)
    unfinished = [j.id for j in jobs if j.status.value in ACTIVE]
    if any(j.options.get("detectPhrases") for j in jobs):
        for insight in find_insights([m.text for m in out]):
            if insight.phrase:
                out[insight.message].phrases.append(
                    Phrase(type="action_phrase", text=insight.phrase))
    if sentiment and out:
        worker = services(request).engine.understanding
        scores = await asyncio.wrap_future(worker.sentiments([m.text for m in out]))
        for message, found in zip(out, scores, strict=True):
            message.sentiment = SentimentOut(polarity=Polarity(score=found.score),
                                             suggested=found.label)
    body: dict[str, Any] = {"messages": out}
    if unfinished:
        body["incomplete"] = True
        body["pendingJobs"] = unfinished
    return body


@router.get("/v1/conversations/{conversationId}/entities", response_model=EntitiesOut,
            summary="Entities found in the conversation (jobs sent with detectEntities=true)")
async def entities(request: Request, conversationId: str) -> EntitiesOut:  # noqa: N803
    jobs, results, out = await _loaded(request, conversationId)
    found = [m.get("entities", []) for j in jobs for m in results.get(j.id, ())]
    return entities_body(out, found)


@router.get("/v1/conversations/{conversationId}/topics",
            summary="Topics of the conversation, from the tag model", response_model=TopicsOut)
async def topics(request: Request, conversationId: str) -> dict[str, Any]:  # noqa: N803
    store = job_store(request)
    owner = request_owner(request)
    engine = services(request).engine
    await asyncio.to_thread(store.get_conversation, owner, conversationId)
    jobs = await asyncio.to_thread(store.conversation_jobs, owner, conversationId)
    results = await asyncio.to_thread(store.results, conversationId)
    if engine.tag_worker is None:
        raise NotReady("topics need the tag model, which this server runs without "
                       "(--no-tagging)")
    # The sentence model reads ~250 tokens: score passages of whole messages (about
    # TOPIC_PASSAGE_WORDS words each) and average, weighted by words. A topic's messageIds
    # are the messages of the passages where it scored over its own threshold.
    passages: list[tuple[list[str], list[str]]] = []  # (message ids, words)
    for job in jobs:
        for k, m in enumerate(results.get(job.id, ())):
            if not passages or len(passages[-1][1]) >= TOPIC_PASSAGE_WORDS:
                passages.append(([], []))
            passages[-1][0].append(f"{job.id}-{k}")  # the ids of messages_body
            passages[-1][1].extend(m["text"].split())
    total_words = sum(len(words) for _, words in passages) or 1
    totals: dict[str, float] = {}
    bars: dict[str, float] = {}
    where: dict[str, list[str]] = {}
    for ids, words in passages:
        if not words:
            continue
        scored = await asyncio.wrap_future(
            engine.tag_worker.submit(engine.catalogue, " ".join(words), None))
        weight = len(words) / total_words
        for t in scored.topics:
            totals[t.name] = totals.get(t.name, 0.0) + weight * t.score
            bars[t.name] = t.threshold
            if t.score >= t.threshold:
                where.setdefault(t.name, []).extend(ids)
    found = sorted(((name, score) for name, score in totals.items() if score >= bars[name]),
                   key=lambda item: -item[1])
    return {"topics": [{"id": name, "text": name, "type": "topic", "score": round(score, 3),
                        "messageIds": list(dict.fromkeys(where.get(name, ()))),
                        "parentRefs": []} for name, score in found]}


async def _transcript(request: Request, conversation_id: str) -> tuple[Any, list[Any], list[Any]]:
    """(tag worker, messages, jobs) of a conversation; 503 without the sentence model."""
    jobs, _, out = await _loaded(request, conversation_id)
    engine = services(request).engine
    if engine.tag_worker is None:
        raise NotReady("this needs the sentence model, which this server runs without "
                       "(--no-tagging)")
    return engine.tag_worker, out, jobs


async def _embedded(request: Request, conversation_id: str) -> tuple[list[Any], Any]:
    """A conversation's messages and their sentence embeddings (none when it is empty)."""
    worker, out, _ = await _transcript(request, conversation_id)
    if not out:
        return [], None
    return out, await asyncio.wrap_future(worker.embed([m.text for m in out]))


@router.get("/v1/conversations/{conversationId}/summary", response_model=SummaryOut,
            summary="An extractive summary: the most representative sentences")
async def summary(request: Request, conversationId: str) -> SummaryOut:  # noqa: N803
    return await services(request).summaries.get(request_owner(request), conversationId)


async def _insights(request: Request, conversation_id: str, kind: str) -> list[Any]:
    """A conversation's insights of one kind, over the bar its jobs asked for."""
    jobs, results, out = await _loaded(request, conversation_id)
    # The newest job's confidenceThreshold (a PUT may raise or lower it); the seed's 0.5.
    threshold = next((j.options["confidenceThreshold"] for j in reversed(jobs)
                      if "confidenceThreshold" in j.options), 0.5)
    return insights_body(out, find_insights([m.text for m in out], threshold), kind)


@router.get("/v1/conversations/{conversationId}/questions", response_model=QuestionsOut,
            summary="Questions asked in the conversation", **CLEAN)
async def questions(request: Request, conversationId: str) -> QuestionsOut:  # noqa: N803
    return QuestionsOut(questions=await _insights(request, conversationId, QUESTION))


@router.get("/v1/conversations/{conversationId}/action-items", response_model=ActionItemsOut,
            summary="Action items: tasks someone took on or was asked to do", **CLEAN)
async def action_items(request: Request, conversationId: str) -> ActionItemsOut:  # noqa: N803
    return ActionItemsOut(actionItems=await _insights(request, conversationId, ACTION_ITEM))


@router.get("/v1/conversations/{conversationId}/follow-ups", response_model=FollowUpsOut,
            summary="Follow-ups: calls, emails and meetings someone will set up", **CLEAN)
async def follow_ups(request: Request, conversationId: str) -> FollowUpsOut:  # noqa: N803
    return FollowUpsOut(followUps=await _insights(request, conversationId, FOLLOW_UP))


@router.get("/v1/conversations/{conversationId}/chapters", response_model=ChaptersOut,
            summary="Chapters: where the talk changes subject, each with its gist")
async def chapters(request: Request, conversationId: str) -> ChaptersOut:  # noqa: N803
    out, vectors = await _embedded(request, conversationId)
    if not out:
        return ChaptersOut(chapters=[])
    found = []
    for a, b, best in chapters_of([m.text for m in out], vectors):
        part, gist = out[a:b], out[best]
        found.append(ChapterOut(start=part[0].timeOffset,
                                end=round(part[-1].timeOffset + part[-1].duration, 3),
                                gist=gist.text, messageIds=[m.id for m in part]))
    return ChaptersOut(chapters=found)


@router.get("/v1/conversations/{conversationId}/trackers", response_model=TrackersOut,
            summary="Where the request's trackers matched (exactly or by meaning)")
async def trackers(request: Request, conversationId: str) -> TrackersOut:  # noqa: N803
    worker, out, jobs = await _transcript(request, conversationId)
    wanted = [t for j in jobs for t in j.options.get("trackers", ())]
    if not wanted or not out:
        return TrackersOut(trackers=[])
    phrases = sorted({v for t in wanted for v in t["vocabulary"]})
    texts = sorted(set(phrases) | {w for m in out for p in phrases
                                   for w in tracker_windows(m.text, p)})
    vectors = await asyncio.wrap_future(worker.embed(texts))
    by_text = dict(zip(texts, vectors, strict=True))
    return TrackersOut(trackers=match_trackers(wanted, out, by_text))
