"""Tagging-session routes (seeds 000/001): ``POST /stream/tag``, ``GET /stream/tag/{id}``.
The sessions run in ``livejobs/tag_sessions.TaggingSessions``.

A session listens to the URL for ``--tag-session-s`` (60) seconds of stream audio, then
computes tags over what was said and sends one webhook. Sessions are rows in the database:
one still listening when the server stops is started again (a fresh listen) after the restart.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request

from earmark.api.auth import request_principal
from earmark.api.services import ready_services, services
from earmark.auth import key_from_request
from earmark.dialects.chatsight import (
    TagSessionOut,
    TagSessionRequest,
)
from earmark.errors import InvalidParameter, NotReady, Unauthorized
from earmark.outbound.url_safety import check_url, parse_networks
from earmark.outbound.webhooks import check_webhook_url

logger = logging.getLogger(__name__)
router = APIRouter()
CHATSIGHT_API = "chatsightvoice"


def tagging_owner(request: Request) -> str:
    """Earmark's usual key forms, or the seed's ``x-chatsight-api-auth`` header."""
    api = request.headers.get("x-chatsight-api")
    if api is not None and api != CHATSIGHT_API:
        raise InvalidParameter(f"x-chatsight-api must be {CHATSIGHT_API!r}",
                               param="x-chatsight-api")
    key, _ = key_from_request(request.headers, request.query_params, [])
    key = key or request.headers.get("x-chatsight-api-auth")
    try:
        return request_principal(request, key=key or "").owner
    except Unauthorized:
        raise Unauthorized("a valid API key is required (x-chatsight-api-auth or "
                           "Authorization: Bearer)") from None


@router.post("/stream/tag", summary="Start a 60-second tagging session on a live URL",
             response_model=TagSessionOut, response_model_exclude_none=True)
async def start_tagging(request: Request, body: TagSessionRequest) -> TagSessionOut:
    owner = tagging_owner(request)
    svc = ready_services(request)
    if svc.engine.tag_worker is None:
        raise NotReady("this server runs without the tag model (--no-tagging)")
    settings = svc.settings
    await asyncio.to_thread(check_url, body.url, parse_networks(settings.url_allow_networks))
    if body.webhook:
        await asyncio.to_thread(check_webhook_url, body.webhook, settings, "webhook")
    refusal = svc.sessions.over_capacity() or svc.sessions.over_pull_limit()
    if refusal is not None:
        raise refusal
    tags = await svc.tag_sessions.tags_for(owner, body.tagCollection)
    session = await asyncio.to_thread(svc.live_jobs.start_tag_session, owner,
                                      body.convoId, body.model_dump())
    svc.tag_sessions.start(session, tags)
    return TagSessionOut(convoId=session.convo_id, state=session.state,
                         startedAt=session.created)


@router.get("/stream/tag/{convoId}", summary="A tagging session's state and result",
            response_model=TagSessionOut, response_model_exclude_none=True)
async def get_tagging(request: Request, convoId: str) -> TagSessionOut:  # noqa: N803
    owner = tagging_owner(request)
    store = services(request).live_jobs
    if store is None:
        raise NotReady("the server is starting")
    session = await asyncio.to_thread(store.get_tag_session, owner, convoId)
    result = dict(session.result or {})
    if isinstance(result.get("undocumentedTags"), str):  # stored by an earlier version: the names
        result["undocumentedTagNames"] = result["undocumentedTags"]
        result["undocumentedTags"] = bool(result["undocumentedTagNames"])
    return TagSessionOut(convoId=session.convo_id, state=session.state, reason=session.reason,
                         startedAt=session.created, finishedAt=session.finished, **result)
