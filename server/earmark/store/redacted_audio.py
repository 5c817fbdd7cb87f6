"""Redacted audio files of stream-job segments: ``<data_dir>/redacted/<task>/<index>.<fmt>``,
written before the callback that links them, swept after ``--audio-retention-h``."""

from __future__ import annotations

import io
import logging
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE

logger = logging.getLogger(__name__)
FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav"}


def segment_path(data_dir: str, task_id: str, index: int, fmt: str) -> Path:
    return Path(data_dir) / "redacted" / task_id / f"{index}.{fmt}"


def encode(samples: npt.NDArray[np.float32], fmt: str) -> bytes:
    """16 kHz mono as WAV (16-bit PCM) or MP3 (64 kb/s, through PyAV's LAME)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    if fmt == "wav":
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(pcm.tobytes())
        return out.getvalue()
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = 64_000
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def write_segment(data_dir: str, task_id: str, index: int, fmt: str,
                  samples: npt.NDArray[np.float32]) -> Path:
    """Writes atomically (a reader never sees half a file)."""
    path = segment_path(data_dir, task_id, index, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(encode(samples, fmt))
    tmp.replace(path)
    return path


def sweep(data_dir: str, older_than_s: float) -> int:
    """Deletes segment files older than ``older_than_s``; returns how many."""
    root = Path(data_dir) / "redacted"
    if not root.is_dir():
        return 0
    cutoff, removed = time.time() - older_than_s, 0
    for path in root.glob("*/*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    for folder in root.iterdir():
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass
    if removed:
        logger.info("removed %d redacted audio files past retention", removed)
    return removed
