"""A file job that a waiting caller answers from: Deepgram's pre-recorded ``POST /v1/listen``
and OpenAI's ``POST /v1/audio/transcriptions`` both run an upload as a file job (the same
decoding child, VAD, chunking and scheduler lane as ``/v1/process/audio``), ahead of queued
file jobs, and answer with its stored sentences."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from earmark.api.services import AppServices
from earmark.auth import Principal
from earmark.errors import BadAudio, InvalidParameter, NotReady, RecognitionFailed
from earmark.filejobs.audio_file import AudioInfo, probe
from earmark.store.jobs import Job

HASH_BLOCK = 1 << 20


async def create_job(svc: AppServices, principal: Principal, path: Path, *, name: str,
                     options: dict[str, Any], max_jobs: int) -> Job:
    """Probes the audio and stores the job (the file is removed if that fails)."""
    try:
        info: AudioInfo = await asyncio.to_thread(probe, str(path))
        limit_s = svc.settings.max_job_audio_s
        if info.duration_s > limit_s:
            raise InvalidParameter(f"the audio is {info.duration_s:.0f} s; the limit is "
                                   f"{limit_s:.0f} s", param="body")
        return await asyncio.to_thread(
            svc.jobs.create_job, owner=principal.owner, conversation_id=None, name=name,
            audio_path=str(path), duration_s=info.duration_s, channels=info.channels,
            options=options, webhook_url=None, max_active=max_jobs)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


async def wait_for(svc: AppServices, principal: Principal,
                   job: Job) -> tuple[Job, list[dict[str, Any]]]:
    """Runs the job before queued file jobs and waits for it; if the caller goes away the
    job still completes (its result stays in the store, as any job's). Returns the finished
    job and its sentence records, or raises the error the caller should get."""
    svc.job_runner.enqueue(job.id, urgent=True)
    await svc.job_runner.wait(job.id)
    done = await asyncio.to_thread(svc.jobs.get_job, principal.owner, job.id)
    if done.status.value == "failed":
        reason = done.reason or "transcription failed"
        if "internal error" in reason:
            raise RecognitionFailed(reason)
        raise BadAudio(reason)
    if done.status.value != "completed":
        raise NotReady("the server stopped before the audio was transcribed; send it again")
    records = (await asyncio.to_thread(svc.jobs.results, done.conversation_id)).get(done.id, [])
    return done, records


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
