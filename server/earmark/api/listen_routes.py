"""``POST /v1/listen``: Deepgram's pre-recorded API, on the same path as the live socket.

The body is the audio file's bytes (any container FFmpeg reads; headerless 16-bit PCM with
``encoding=linear16&sample_rate=N``), or JSON ``{"url": "..."}`` for the server to fetch. The
audio becomes a file job (the same decoding child, VAD, chunking, scheduler lane and
diarization as ``/v1/process/audio``), queued ahead of other file jobs because a caller
waits. Without ``callback`` the answer is the transcript; with it, ``{"request_id"}`` at once
and the transcript is POSTed to the callback from the webhook outbox (retried, signed, kept
across restarts) once ready. Errors use Deepgram's REST shape (``err_code``, ``err_msg``,
``request_id``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import wave
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from earmark.api.auth import request_principal
from earmark.api.job_routes import new_upload_path, receive_upload
from earmark.api.services import ready_services, services
from earmark.api.waited_jobs import HASH_BLOCK, create_job, sha256_of, wait_for
from earmark.auth import limit
from earmark.dialects.deepgram_prerecorded import (
    PrerecordedOptions,
    error_body,
    parse_prerecorded_options,
    prerecorded_body,
)
from earmark.errors import BadAudio, EarmarkError, InvalidParameter, retry_headers
from earmark.filejobs.runner import listen_summary, listen_topics
from earmark.ingest.url_download import download
from earmark.outbound.webhooks import check_webhook_url

logger = logging.getLogger(__name__)
router = APIRouter()
MAX_URL_BODY_BYTES = 64 * 1024

LISTEN_BODY = {
    "requestBody": {
        "required": True,
        "description": "the audio file's bytes, or JSON {\"url\": \"https://...\"}",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object", "required": ["url"],
                                            "properties": {"url": {"type": "string"}}}},
        },
    },
    "responses": {"400": {"description": "a bad parameter or undecodable audio"},
                  "401": {"description": "no valid API key"},
                  "413": {"description": "the file is over the upload limit"},
                  "429": {"description": "the key's concurrent-job limit is reached"}},
}


def _error(err: EarmarkError, request_id: str) -> JSONResponse:
    return JSONResponse(error_body(err.code, err.message, request_id, err.param),
                        status_code=err.http_status, headers=retry_headers(err))


@router.post("/v1/listen", openapi_extra=LISTEN_BODY,
             summary="Transcribe an audio file or URL (Deepgram's pre-recorded API)")
async def listen(request: Request) -> JSONResponse:
    request_id = str(uuid.uuid4())
    try:
        return await _listen(request, request_id)
    except EarmarkError as err:
        return _error(err, request_id)


async def _listen(request: Request, request_id: str) -> JSONResponse:
    svc = ready_services(request)
    settings = svc.settings
    principal = request_principal(request)
    options = parse_prerecorded_options(
        [(k, v) for k, v in request.query_params.multi_items()],
        multilingual=svc.engine.multilingual)
    if options.callback is not None:
        await asyncio.to_thread(check_webhook_url, options.callback, settings, "callback")
    for wanted, name in ((options.summarize, "summarize"), (options.topics, "topics")):
        if wanted and svc.engine.tag_worker is None:
            raise InvalidParameter(f"{name} needs the sentence model, which this server runs "
                                   "without (--no-tagging)", param=name)
    max_jobs = limit(settings, principal, "max_jobs")
    await asyncio.to_thread(svc.jobs.check_room, principal.owner, max_jobs)
    path = await _audio(request, options)
    try:
        sha256 = await asyncio.to_thread(sha256_of, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    job = await create_job(svc, principal, path, name=f"listen {request_id}",
                           options=_job_options(options, request_id, sha256),
                           max_jobs=max_jobs)
    if options.callback is not None:
        svc.job_runner.enqueue(job.id)
        return JSONResponse({"request_id": job.id})
    done, records = await wait_for(svc, principal, job)
    engine = svc.engine
    summary = (await listen_summary(engine.tag_worker, records)
               if options.summarize else "")
    topics = await listen_topics(engine.tag_worker, records) if options.topics else []
    body = prerecorded_body(request_id=done.id, created=done.created,
                            duration_s=done.duration_s, channels=done.channels, sha256=sha256,
                            model_name=engine.model_name, records=records,
                            options=options, summary=summary, topics=topics)
    return JSONResponse(body, headers={"dg-request-id": done.id})


def _job_options(options: PrerecordedOptions, request_id: str, sha256: str) -> dict[str, Any]:
    """The file-job options the runner reads, and the Deepgram request for the response."""
    return {
        "dialect": "deepgram", "deepgram": options.to_json(), "requestId": request_id,
        "sha256": sha256, "hotwords": options.hotwords,
        "language": options.language.split("-")[0].lower(),  # "auto": detected per chunk
        "enableSpeakerDiarization": options.diarize,
        "enableSeparateRecognitionPerChannel": options.multichannel,
    }


async def _audio(request: Request, options: PrerecordedOptions) -> Path:
    """The request's audio as a file under the data directory (bytes, or fetched)."""
    settings = services(request).settings
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        raw = b""
        async for piece in request.stream():
            raw += piece
            if len(raw) > MAX_URL_BODY_BYTES:
                raise InvalidParameter("a JSON body holds only {\"url\": ...}", param="url")
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidParameter("the JSON body is not valid JSON; send {\"url\": ...} or "
                                   "the audio bytes", param="url") from None
        url = parsed.get("url") if isinstance(parsed, dict) else None
        if not isinstance(url, str) or not url:
            raise InvalidParameter("the JSON body must be {\"url\": \"...\"}", param="url")
        path = new_upload_path(settings)
        try:
            await download(url, path, allow_networks=settings.url_allow_networks,
                           max_bytes=settings.max_upload_bytes)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    else:
        path = await receive_upload(request)
    if options.encoding is not None:
        try:
            await asyncio.to_thread(_wrap_raw, path, options)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return path


def _wrap_raw(path: Path, options: PrerecordedOptions) -> None:
    """Headerless linear16 -> a WAV file in place (the decoder sniffs containers)."""
    assert options.sample_rate is not None
    size = path.stat().st_size
    if size % (2 * options.channels):
        raise BadAudio("the linear16 audio's length is not a whole number of "
                       f"{options.channels}-channel 16-bit samples")
    wrapped = path.with_suffix(".wav")
    with path.open("rb") as src, wave.open(str(wrapped), "wb") as out:
        out.setnchannels(options.channels)
        out.setsampwidth(2)
        out.setframerate(options.sample_rate)
        while block := src.read(HASH_BLOCK):
            out.writeframes(block)
    wrapped.replace(path)
