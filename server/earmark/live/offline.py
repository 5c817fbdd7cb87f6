"""Runs the live policy over a whole file, synchronously (``earmark transcribe``)."""

from __future__ import annotations

import sys

import numpy as np
import orjson

from earmark.config import Settings
from earmark.core import SAMPLE_RATE, WINDOW_SAMPLES
from earmark.core.events import Priority, Recognition, RecognitionRequest, Transcript
from earmark.core.session import SessionConfig, StreamSession
from earmark.inference.vad import SileroVad
from earmark.inference.whisper import DecodeOptions, WhisperBackend

CHUNK_WINDOWS = 16  # ~0.5 s per step, as a live client would send


def transcribe_samples(
    audio: np.ndarray,
    backend: WhisperBackend,
    vad: SileroVad,
    config: SessionConfig,
    *,
    beam_size: int = 5,
) -> list[Transcript]:
    """Feeds 16 kHz mono audio through StreamSession; decodes finals at once, in order."""
    session = StreamSession(config)
    state = vad.new_state()
    finals: list[Transcript] = []

    def serve(requests: list[RecognitionRequest]) -> None:
        while requests:
            request = requests.pop(0)
            beam = 1 if request.priority is Priority.PARTIAL else beam_size
            result: Recognition = backend.transcribe(
                request.audio, DecodeOptions(beam, request.hotwords, request.language,
                              request.previous_text)
            )
            session.receive_result(request.request_id, result)
            requests.extend(session.requests_to_send())

    step = CHUNK_WINDOWS * WINDOW_SAMPLES
    whole = len(audio) - len(audio) % WINDOW_SAMPLES
    padded = np.concatenate([audio[:whole], np.zeros(WINDOW_SAMPLES, np.float32)]) \
        if whole < len(audio) else audio
    for start in range(0, len(padded), step):
        chunk = padded[start : start + step]
        chunk = chunk[: len(chunk) - len(chunk) % WINDOW_SAMPLES]
        if len(chunk):
            session.receive_audio(chunk, vad.probs(state, chunk))
            serve(session.requests_to_send())
    session.receive_close()
    serve(session.requests_to_send())
    finals = [e for e in session.events_to_send() if isinstance(e, Transcript) and e.is_final]
    return finals


def print_file_transcript(settings: Settings, path: str, *, as_json: bool) -> int:
    from faster_whisper.audio import decode_audio

    try:
        audio = decode_audio(path, sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types for bad input
        print(f"earmark: cannot decode {path}: {exc}", file=sys.stderr)
        return 2
    backend = WhisperBackend(settings.model, device=settings.device,
                             compute_type=settings.compute_type,
                             cpu_threads=settings.cpu_threads,
                             detect_music=settings.music_threshold < 1)
    config = SessionConfig(interim_results=False, music_threshold=settings.music_threshold,
                           max_utterance_samples=int(settings.max_utterance_s * SAMPLE_RATE))
    for t in transcribe_samples(audio.astype(np.float32), backend, SileroVad(), config,
                                beam_size=settings.beam_size):
        start, end = t.start_sample / SAMPLE_RATE, t.end_sample / SAMPLE_RATE
        if as_json:
            words = [{"word": w.text, "start": w.start_sample / SAMPLE_RATE,
                      "end": w.end_sample / SAMPLE_RATE, "confidence": w.probability}
                     for w in t.words]
            sys.stdout.write(orjson.dumps({"start": start, "end": end, "text": t.text,
                                           "words": words}).decode() + "\n")
        elif t.text:
            print(f"[{start:7.2f} - {end:7.2f}] {t.text}")
    return 0
