"""The OpenAI audio API: ``POST /v1/audio/transcriptions``, ``POST /v1/audio/translations``
and ``GET /v1/models``, for code written against OpenAI's SDK with only the base URL changed.

The upload (multipart ``file``) runs as a file job ahead of queued file jobs, as Deepgram's
pre-recorded requests do (``api/waited_jobs.py``); ``dialects/openai_audio.py`` parses the
form and renders the response format. Every error uses OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from earmark.api.auth import request_principal
from earmark.api.job_routes import store_upload
from earmark.api.services import ready_services, services
from earmark.api.waited_jobs import create_job, wait_for
from earmark.auth import limit
from earmark.dialects.openai_audio import (
    OpenAIAudioOptions,
    detected_language,
    error_body,
    parse_form,
    render,
)
from earmark.errors import EarmarkError, InvalidParameter, retry_headers

router = APIRouter()
COPY_BLOCK = 1 << 20
# Names an OpenAI client may ask for; the loaded model answers each (GET /v1/models).
ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")

FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file", "model"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "model": {"type": "string"}, "language": {"type": "string"},
                "prompt": {"type": "string"}, "temperature": {"type": "number"},
                "response_format": {"type": "string",
                                    "enum": ["json", "text", "srt", "vtt", "verbose_json"]},
                "timestamp_granularities[]": {"type": "array", "items": {
                    "type": "string", "enum": ["segment", "word"]}},
            }}}},
    },
    "responses": {"400": {"description": "a bad field or undecodable audio"},
                  "401": {"description": "no valid API key"},
                  "413": {"description": "the file is over the upload limit"},
                  "429": {"description": "the key's concurrent-job limit is reached"}},
}


def openai_error(err: EarmarkError) -> JSONResponse:
    kind = "invalid_request_error" if err.http_status < 500 else "server_error"
    if err.http_status == 429:
        kind = "rate_limit_exceeded"
    code = "invalid_api_key" if err.http_status == 401 else err.code.lower()
    return JSONResponse(error_body(err.message, err.param, code, kind),
                        status_code=err.http_status, headers=retry_headers(err))


@router.post("/v1/audio/transcriptions", openapi_extra=FORM_BODY,
             summary="Transcribe an audio file (OpenAI's audio API)")
async def transcriptions(request: Request) -> Response:
    try:
        return await _transcribe(request, "transcribe")
    except EarmarkError as err:
        return openai_error(err)


@router.post("/v1/audio/translations", openapi_extra=FORM_BODY,
             summary="Translate an audio file into English (OpenAI's audio API)")
async def translations(request: Request) -> Response:
    try:
        return await _transcribe(request, "translate")
    except EarmarkError as err:
        return openai_error(err)


@router.get("/v1/models", summary="The models this server answers with (OpenAI's list)")
async def models(request: Request) -> JSONResponse:
    try:
        svc = ready_services(request)
        request_principal(request)
    except EarmarkError as err:
        return openai_error(err)
    return JSONResponse({"object": "list", "data": _models(svc.engine.model_name)})


@router.get("/v1/models/{model_id:path}", summary="One model (OpenAI's shape)")
async def model(request: Request, model_id: str) -> JSONResponse:
    try:
        svc = ready_services(request)
        request_principal(request)
    except EarmarkError as err:
        return openai_error(err)
    for entry in _models(svc.engine.model_name):
        if entry["id"] == model_id:
            return JSONResponse(entry)
    return JSONResponse(error_body(f"the model {model_id!r} does not exist here",
                                   "model", "model_not_found"), status_code=404)


def _models(loaded: str) -> list[dict[str, Any]]:
    created = int(time.time())
    return [{"id": name, "object": "model", "created": created, "owned_by": "earmark",
             "root": loaded} for name in (loaded, *ALIASES)]


async def _transcribe(request: Request, task: str) -> Response:
    svc = ready_services(request)
    principal = request_principal(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidParameter("send multipart/form-data with the audio as `file`",
                               param="file")
    max_jobs = limit(svc.settings, principal, "max_jobs")
    await asyncio.to_thread(svc.jobs.check_room, principal.owner, max_jobs)
    try:
        form = await request.form(max_files=1, max_fields=32)
    except HTTPException as exc:  # Starlette's answer to a malformed or oversized form
        raise InvalidParameter(f"the multipart form cannot be read: {exc.detail}",
                               param="file") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidParameter("the form has no `file` part with the audio", param="file")
        fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        options = parse_form(fields, task=task, multilingual=svc.engine.multilingual)
        path = await _keep(request, upload)
    finally:
        await form.close()
    job = await create_job(svc, principal, path, name=f"openai {uuid.uuid4()}",
                           options=_job_options(options, svc.engine.multilingual),
                           max_jobs=max_jobs)
    done, records = await wait_for(svc, principal, job)
    language = options.language or detected_language(records, "en")
    body, media_type = render(records, options, done.duration_s, language)
    if isinstance(body, str):
        return PlainTextResponse(body, media_type=media_type)
    return JSONResponse(body)


def _job_options(options: OpenAIAudioOptions, multilingual: bool) -> dict[str, Any]:
    language = options.language or ("auto" if multilingual else "en")
    return {"dialect": "openai", "hotwords": options.prompt, "language": language,
            "markLanguages": language == "auto"}


async def _keep(request: Request, upload: UploadFile) -> Path:
    """Copies the uploaded part under the data directory (the decoder reads it from there)."""
    async def pieces() -> AsyncIterator[bytes]:
        while block := await upload.read(COPY_BLOCK):
            yield block

    return await store_upload(services(request).settings, pieces(),
                              "the `file` part is empty; send the audio file's bytes")
