"""``POST /v2/stream``: synchronous transcription of short audio (seed 002).

The body is ``{"audio_data": "<base64>"}``: a WAV file's bytes (16-bit PCM, any rate and
channel count; resampled and mixed down here) or raw 16 kHz mono 16-bit little-endian PCM.
At most 15 s. The request goes through the shared scheduler in the SYNC lane: after finals,
before interims and file jobs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import itertools
import uuid
import wave
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from earmark.api.auth import request_principal
from earmark.api.services import ready_services
from earmark.core.events import Priority, RecognitionRequest
from earmark.core.music import is_music
from earmark.errors import (
    BadAudio,
    InvalidParameter,
    Overloaded,
    RecognitionFailed,
)

router = APIRouter()

MAX_AUDIO_S = 15.0
RATE = 16000
# Headerless PCM as the hosted /v2/stream takes it: 16-bit mono at 8 kHz (its 128 kbit/s);
# its guide strips a WAV's 44-byte header and sends the rest. ``sample_rate`` overrides.
RAW_RATE = 8000
# Refuse rather than queue: a synchronous caller waits on the line.
MAX_SYNC_QUEUE_AGE_S = 2.0
_ids = itertools.count(1)


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    audio_data: str = Field(min_length=1, description="WAV bytes, or headerless mono 16-bit "
                            "little-endian PCM (8 kHz unless sample_rate says), "
                            "base64-encoded; at most 15 s")
    sample_rate: int | None = Field(None, ge=8000, le=48000, description="the rate of "
                                    "headerless PCM (default 8000, as the hosted API); a WAV "
                                    "carries its own")


class StreamWord(BaseModel):
    text: str
    start: int = Field(description="ms from the start of the audio")
    end: int = Field(description="ms from the start of the audio")
    confidence: float


class StreamResponse(BaseModel):
    id: str
    status: str = "completed"
    confidence: float
    text: str
    words: list[StreamWord]
    created: str


def decode_audio(data: bytes, raw_rate: int = RAW_RATE) -> np.ndarray:
    """WAV or headerless PCM at ``raw_rate`` -> float32 16 kHz mono. Raises BadAudio with
    what is wrong."""
    if data[:4] == b"RIFF" and data[8:12] != b"WAVE":
        raise BadAudio("the data begins with RIFF but is not a WAV file (no WAVE form type)",
                       param="audio_data")
    if data[:4] == b"RIFF":
        try:
            with wave.open(io.BytesIO(data)) as w:
                if w.getsampwidth() != 2:
                    raise BadAudio("WAV audio must be 16-bit PCM", param="audio_data")
                rate, channels = w.getframerate(), w.getnchannels()
                frames = w.readframes(w.getnframes())
        except BadAudio:
            raise
        except Exception as exc:  # noqa: BLE001 - stdlib wave raises RuntimeError, struct.error...
            # (found by tests/reliability/test_parsers_fuzz.py: a bad chunk size)
            raise BadAudio(f"the WAV data cannot be read: {exc or type(exc).__name__}",
                           param="audio_data") from None
        if not 8000 <= rate <= 48000:
            raise BadAudio(f"WAV sample rate {rate} is outside 8000-48000 Hz",
                           param="audio_data")
    else:
        rate, channels, frames = raw_rate, 1, data
    usable = len(frames) - len(frames) % (2 * channels)
    if usable != len(frames):
        raise BadAudio("the PCM data has an odd number of bytes; expected 16-bit samples",
                       param="audio_data")
    audio = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1)
    if len(audio) / rate > MAX_AUDIO_S:
        raise InvalidParameter(f"the audio is {len(audio) / rate:.1f} s; /v2/stream takes at "
                               f"most {MAX_AUDIO_S:g} s (use /v1/process/audio for files)",
                               param="audio_data")
    if not len(audio):
        raise BadAudio("the audio is empty", param="audio_data")
    if rate != RATE:
        import soxr

        audio = soxr.resample(audio, rate, RATE).astype(np.float32)
        if not len(audio):  # one sample at 32 kHz is none at 16 kHz (found by the fuzz test)
            raise BadAudio("the audio is too short to hold one sample at 16 kHz",
                           param="audio_data")
    return audio


@router.post("/v2/stream", response_model=StreamResponse)
async def stream(request: Request, body: StreamRequest) -> StreamResponse:
    request_principal(request)
    svc = ready_services(request)
    settings, engine = svc.settings, svc.engine
    assert engine.scheduler is not None  # (loaded with the models)
    try:
        raw = base64.b64decode(body.audio_data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter("audio_data is not valid base64", param="audio_data") from None
    audio = decode_audio(raw, body.sample_rate or RAW_RATE)
    if engine.scheduler.queue_age_s()["sync"] > MAX_SYNC_QUEUE_AGE_S:
        raise Overloaded("too many synchronous requests are waiting; retry shortly")
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    future = engine.scheduler.submit(
        request, RecognitionRequest(next(_ids), Priority.SYNC, 0, audio))
    try:
        result = await asyncio.wrap_future(future)
    except Exception:  # the scheduler logged it; the caller gets the documented shape
        raise RecognitionFailed("the model failed on this audio; see the server log") from None
    if is_music(result.music_prob, settings.music_threshold):
        result = replace(result, words=())  # sung lyrics and music are not speech
    words = [StreamWord(text=w.text.strip(), start=round(w.start_sample * 1000 / RATE),
                        end=round(w.end_sample * 1000 / RATE),
                        confidence=round(w.probability, 3))
             for w in result.words if w.text.strip()]
    confidence = round(float(np.mean([w.confidence for w in words])), 3) if words else 0.0
    return StreamResponse(id=str(uuid.uuid4()), confidence=confidence,
                          text=" ".join(w.text for w in words), words=words, created=created)
