"""Async audio-file jobs (seed 003): upload, append, job status, webhooks, deletion (the
conversation results are in ``conversation_routes.py``).

``POST /v1/process/audio`` takes the raw file as the body (any format FFmpeg reads, sniffed
from the bytes). The body is streamed to a file under the data directory while its size is
counted, probed, and only then becomes a job; every refusal (bad parameter, too large, not
audio, over the per-key job limit) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from earmark.api.auth import request_owner, request_principal
from earmark.api.services import ready_services, services
from earmark.auth import limit
from earmark.config import Settings
from earmark.dialects.file_job_options import parse_job_options
from earmark.dialects.file_jobs import (
    Deleted,
    JobCreated,
    JobOut,
    WebhookSecretOut,
    WebhooksOut,
    job_body,
)
from earmark.errors import (
    BadAudio,
    InvalidParameter,
    PayloadTooLarge,
    StorageFull,
    is_disk_full,
)
from earmark.filejobs.audio_file import AudioInfo, probe
from earmark.outbound.webhooks import check_webhook_url, owner_secret
from earmark.store.jobs import JobStore

logger = logging.getLogger(__name__)
router = APIRouter()
CLEAN: dict[str, Any] = {"response_model_exclude_none": True}

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "the audio file's bytes (wav, mp3, ogg, flac, m4a, ... anything FFmpeg "
                       "decodes; sniffed from the bytes)",
        "content": {"application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}},
    },
    "parameters": [
        {"name": n, "in": "query", "required": False, "schema": schema}
        for n, schema in (
            ("name", {"type": "string", "maxLength": 256}),
            ("webhookUrl", {"type": "string", "format": "uri"}),
            ("customVocabulary", {"type": "array", "items": {"type": "string"}}),
            ("confidenceThreshold", {"type": "number", "minimum": 0.5, "maximum": 1.0}),
            ("languageCode", {"type": "string", "example": "en-US"}),
            ("mode", {"type": "string", "enum": ["default", "phone"]}),
            ("enableSeparateRecognitionPerChannel", {"type": "boolean"}),
            ("channelMetadata", {"type": "string", "description": "JSON: [{\"channel\": 1, "
                                 "\"speaker\": {\"name\": ..., \"email\": ...}}]"}),
            ("detectPhrases", {"type": "boolean"}),
            ("detectEntities", {"type": "boolean"}),
            ("entities", {"type": "string", "description": "JSON: [{\"customType\": ..., "
                          "\"text\": ...}]; needs detectEntities"}),
            ("enableSpeakerDiarization", {"type": "boolean"}),
            ("diarizationSpeakerCount", {"type": "integer", "minimum": 1}),
        )
    ],
    "responses": {"400": {"description": "a bad parameter or undecodable audio"},
                  "401": {"description": "no valid API key"},
                  "404": {"description": "no such conversation (PUT)"},
                  "413": {"description": "the file is over the upload limit"},
                  "429": {"description": "the key's concurrent-job limit is reached"}},
}


def job_store(request: Request) -> JobStore:
    """The job store, or 503 while the server starts or shuts down."""
    return ready_services(request).jobs


async def _options(request: Request) -> tuple[dict[str, Any], str | None, str | None]:
    svc = services(request)
    options, webhook, name = parse_job_options(request.query_params, svc.engine.languages)
    if webhook is not None:
        await asyncio.to_thread(check_webhook_url, webhook, svc.settings, "webhookUrl")
    return options, webhook, name


async def receive_upload(request: Request) -> Path:
    """Streams the body to a new file under the data directory, within the upload limit."""
    settings = services(request).settings
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the file is {int(declared)} bytes; the limit is {limit}")
    return await store_upload(settings, request.stream(),
                              "the request body is empty; send the audio file's bytes")


def new_upload_path(settings: Settings) -> Path:
    """A fresh file name for uploaded audio under the data directory."""
    folder = Path(settings.data_dir) / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{uuid.uuid4().hex}.upload"


async def store_upload(settings: Settings, pieces: AsyncIterator[bytes],
                       empty_message: str) -> Path:
    """Writes ``pieces`` to a new upload file, within the upload limit."""
    limit = settings.max_upload_bytes
    path = new_upload_path(settings)
    size = 0
    try:
        with path.open("wb") as f:
            async for piece in pieces:
                size += len(piece)
                if size > limit:
                    raise PayloadTooLarge(f"the file is over the {limit}-byte upload limit")
                f.write(piece)
        if size == 0:
            raise BadAudio(empty_message)
    except OSError as exc:
        path.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise StorageFull("the server's disk is full; the upload was not kept") from None
        raise
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def _accept(request: Request, conversation_id: str | None) -> JSONResponse:
    svc = ready_services(request)
    store, settings = svc.jobs, svc.settings
    principal = request_principal(request)
    owner = principal.owner
    options, webhook, name = await _options(request)
    if conversation_id is not None:
        await asyncio.to_thread(store.get_conversation, owner, conversation_id)
    # Refuse before reading a possibly large body; create_job checks again atomically.
    await asyncio.to_thread(store.check_room, owner, limit(settings, principal, "max_jobs"))
    path = await receive_upload(request)
    try:
        info: AudioInfo = await asyncio.to_thread(probe, str(path))
        if info.duration_s > settings.max_job_audio_s:
            raise InvalidParameter(f"the audio is {info.duration_s:.0f} s; the limit is "
                                   f"{settings.max_job_audio_s:.0f} s", param="body")
        for item in options.get("channelMetadata", ()):
            if item["channel"] > info.channels:
                raise InvalidParameter(f"channelMetadata names channel {item['channel']} but "
                                       f"the audio has {info.channels}", param="channelMetadata")
        job = await asyncio.to_thread(
            store.create_job, owner=owner, conversation_id=conversation_id, name=name,
            audio_path=str(path), duration_s=info.duration_s, channels=info.channels,
            options=options, webhook_url=webhook, max_active=limit(settings, principal, "max_jobs"))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    svc.job_runner.enqueue(job.id)
    svc.webhooks.wake()
    return JSONResponse({"conversationId": job.conversation_id, "jobId": job.id},
                        status_code=201)


@router.post("/v1/process/audio", status_code=201, openapi_extra=UPLOAD_BODY,
             response_model=JobCreated,
             summary="Submit an audio file as a new conversation")
async def process_audio(request: Request) -> JSONResponse:
    return await _accept(request, None)


@router.put("/v1/process/audio/{conversationId}", status_code=201, openapi_extra=UPLOAD_BODY,
            response_model=JobCreated,
            summary="Append an audio file to a conversation")
async def append_audio(request: Request, conversationId: str) -> JSONResponse:  # noqa: N803
    return await _accept(request, conversationId)


@router.get("/v1/job/{jobId}", summary="A job's status", response_model=JobOut, **CLEAN)
async def job_status(request: Request, jobId: str) -> JobOut:  # noqa: N803
    store = job_store(request)
    return job_body(await asyncio.to_thread(store.get_job, request_owner(request), jobId))


@router.get("/v1/job/{jobId}/webhooks", summary="A job's webhook deliveries and attempts",
            response_model=WebhooksOut, **CLEAN)
async def job_webhooks(request: Request, jobId: str) -> dict[str, Any]:  # noqa: N803
    store = job_store(request)
    owner = request_owner(request)
    await asyncio.to_thread(store.get_job, owner, jobId)
    history = await asyncio.to_thread(services(request).outbox.history, owner, jobId)
    return {"jobId": jobId, "deliveries": history}


@router.get("/v1/webhooks/secret", summary="This key's webhook signing secret",
            response_model=WebhookSecretOut)
async def webhook_secret(request: Request) -> dict[str, str]:
    owner = request_owner(request)
    return {"secret": owner_secret(services(request).webhook_master, owner),
            "signatureHeader": "Earmark-Signature",
            "timestampHeader": "Earmark-Timestamp",
            "scheme": "v1=hex(HMAC-SHA256(secret, timestamp + '.' + body))"}


@router.delete("/v1/conversations/{conversationId}", summary="Delete a conversation",
               response_model=Deleted)
async def delete_conversation(request: Request, conversationId: str) -> dict[str, str]:  # noqa: N803
    svc = ready_services(request)
    removed = await asyncio.to_thread(svc.jobs.delete_conversation, request_owner(request),
                                      conversationId)
    svc.summaries.forget(conversationId)
    for job in removed:
        svc.job_runner.cancel(job.id)
        if job.audio_path:
            Path(job.audio_path).unlink(missing_ok=True)
    return {"message": f"conversation {conversationId} was deleted"}
