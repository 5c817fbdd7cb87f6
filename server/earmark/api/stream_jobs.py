"""Stream-job routes (seed 004): start, stop, list and read tasks, the key's webhook setting.

The tasks themselves run in ``livejobs/stream_jobs.StreamJobs``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from earmark.api.auth import request_owner, request_principal
from earmark.api.services import ready_services, services
from earmark.auth import limit
from earmark.dialects.stream_jobs import (
    StreamStartRequest,
    stream_options,
)
from earmark.errors import InvalidParameter, NotFound
from earmark.outbound.url_safety import check_url, parse_networks
from earmark.outbound.webhooks import check_webhook_url
from earmark.store.live_jobs import LiveJobStore, StreamTask
from earmark.store.redacted_audio import FORMATS, segment_path

logger = logging.getLogger(__name__)
router = APIRouter()
# The task routes, served at /audio-stream/... and at seed 004's own base path
# (/serve/api/v2/audio-stream/...), so a user changes only the host.
streams = APIRouter()
SEED_BASE = "/serve/api/v2"
T = TypeVar("T")

def _ok(data: Any) -> dict[str, Any]:
    return {"code": 200, "message": "success", "data": data}


class StartData(BaseModel):
    task_id: str
    message: str
    ignored: list[str] | None = Field(None, description="options sent for a feature left off "
                                      "(e.g. summary_type without summarization): no effect")


class Envelope(BaseModel, Generic[T]):
    """Seed 004's response wrapper."""

    code: int = 200
    message: str = "success"
    data: T


class TaskData(BaseModel):
    task_id: str
    state: str = Field(description="running | stopped")
    status: int | None = Field(None, description="the last callback's status once stopped")
    reason: str | None = None
    audio_url: str
    created: float
    segments_sent: int
    stream_seconds: float


StartOut = Envelope[StartData]
TaskOut = Envelope[TaskData]
TaskListOut = Envelope[list[TaskData]]


class WebhookSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=4096, description="where stream-job callbacks "
                            "go (null: use the server's --stream-webhook-url)")


def _task_data(task: StreamTask) -> TaskData:
    return TaskData(task_id=task.id, state=task.state, status=task.status, reason=task.reason,
                    audio_url=task.request["audio_url"], created=task.created,
                    segments_sent=task.next_segment,
                    stream_seconds=round(task.stream_offset_s, 3))


def _ready(request: Request) -> LiveJobStore:
    return ready_services(request).live_jobs


@streams.post("/audio-stream/start", response_model=StartOut, response_model_exclude_none=True,
             summary="Start transcribing a live stream in 5-second segments")
async def start_stream(request: Request, body: StreamStartRequest) -> dict[str, Any]:
    svc = ready_services(request)
    store = svc.live_jobs
    principal = request_principal(request)
    owner = principal.owner
    settings = svc.settings
    options = stream_options(body, svc.engine.languages)
    for name, param in (("content_safety", "content_safety"),
                        ("summarization", "summarization"), ("auto_chapters", "auto_chapters"),
                        ("iab_categories", "iab_categories"), ("topics", "custom_topics")):
        if getattr(options, name) and svc.engine.tag_worker is None:
            raise InvalidParameter(f"{param} needs the sentence model, which this server "
                                   "runs without (--no-tagging)", param=param)
    await asyncio.to_thread(check_url, body.audio_url,
                            parse_networks(settings.url_allow_networks), param="audio_url")
    webhook = await asyncio.to_thread(store.webhook_url, owner) or settings.stream_webhook_url
    if not webhook:
        raise InvalidParameter("no webhook is configured for this key: PUT "
                               "/v1/settings/webhook {\"url\": ...} first", param="webhook")
    task = await asyncio.to_thread(store.create_stream, owner, body.model_dump(), webhook,
                                   limit(settings, principal, "max_streams"))
    svc.stream_jobs.start(task)
    if options.redacted_audio:
        await svc.stream_jobs.sweep()
    return _ok({"task_id": task.id, "message": "Audio stream transcription started "
                "successfully", **({"ignored": list(options.ignored)} if options.ignored
                                   else {})})


@streams.post("/audio-stream/stop/{task_id}", response_model=StartOut,
             summary="Stop a stream task (its last callback has status 14)")
async def stop_stream(request: Request, task_id: str) -> dict[str, Any]:
    store = _ready(request)
    task = await asyncio.to_thread(store.get_stream, request_owner(request), task_id)
    if task.state != "running":
        return _ok({"task_id": task.id, "message": "the stream task had already stopped"})
    services(request).stream_jobs.stop(task.id)
    return _ok({"task_id": task.id, "message": "Audio stream transcription is stopping"})


@streams.get("/audio-stream", response_model=TaskListOut, summary="This key's running tasks")
async def list_streams(request: Request) -> dict[str, Any]:
    store = _ready(request)
    tasks = await asyncio.to_thread(store.streams, request_owner(request), running_only=True)
    return _ok([_task_data(t) for t in tasks])


@streams.get("/audio-stream/{task_id}", response_model=TaskOut, summary="One stream task")
async def get_stream(request: Request, task_id: str) -> dict[str, Any]:
    store = _ready(request)
    task = await asyncio.to_thread(store.get_stream, request_owner(request), task_id)
    return _ok(_task_data(task).model_dump())


@streams.get("/audio-stream/{task_id}/segments/{index}/redacted-audio",
            summary="A segment's audio with every redacted word beeped (redact_pii_audio)",
            response_class=FileResponse,
            responses={200: {"content": {t: {} for t in FORMATS.values()}}})
async def get_redacted_audio(request: Request, task_id: str, index: int) -> FileResponse:
    store = _ready(request)
    task = await asyncio.to_thread(store.get_stream, request_owner(request), task_id)
    fmt = (task.request.get("redact_pii_audio_quality") or "mp3") \
        if task.request.get("redact_pii_audio") else None
    path = segment_path(services(request).settings.data_dir, task.id, index, fmt or "mp3")
    if fmt is None or index < 0 or not path.is_file():
        raise NotFound(f"no redacted audio for segment {index} of stream task {task.id} (it "
                       "was not asked for, is not written yet, or is past retention)")
    return FileResponse(path, media_type=FORMATS[fmt],
                        filename=f"{task.id}-{index}-redacted.{fmt}")


@router.get("/v1/settings/webhook", response_model=WebhookSetting,
            summary="This key's stream-job callback URL")
async def get_webhook_setting(request: Request) -> WebhookSetting:
    store = _ready(request)
    return WebhookSetting(url=await asyncio.to_thread(store.webhook_url,
                                                      request_owner(request)))


@router.put("/v1/settings/webhook", response_model=WebhookSetting,
            summary="Set this key's stream-job callback URL")
async def put_webhook_setting(request: Request, body: WebhookSetting) -> WebhookSetting:
    store = _ready(request)
    owner = request_owner(request)
    if body.url:
        await asyncio.to_thread(check_webhook_url, body.url, services(request).settings, "url")
    await asyncio.to_thread(store.set_webhook_url, owner, body.url or None)
    return body
