"""Uploaded audio files: sniffing, probing and decoding with PyAV (FFmpeg).

The container and codec are detected from the bytes; the client's Content-Type is never
trusted. Anything FFmpeg decodes is accepted if it has an audio stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE
from earmark.errors import BadAudio

MAX_CHANNELS = 8


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float
    channels: int
    codec: str
    container: str


def _open(path: str):  # noqa: ANN202 - av types
    import av

    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise BadAudio(f"the body is not an audio file FFmpeg can read ({exc})") from None
    if not container.streams.audio:
        container.close()
        raise BadAudio("the file has no audio stream")
    if container.streams.audio[0].codec_context is None:
        # An audio stream FFmpeg has no decoder for (found by benchmarks/fuzz_decoders.py).
        container.close()
        raise BadAudio("the file's audio codec cannot be decoded")
    return container


def probe(path: str) -> AudioInfo:
    """Reads the headers (and, when they give no duration, decodes to count samples)."""
    import av

    container = _open(path)
    try:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels or 1
        duration_s = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / 1_000_000
        if duration_s <= 0:
            samples = 0
            try:
                for frame in container.decode(stream):
                    samples += frame.samples
                    rate = frame.sample_rate
            except av.FFmpegError as exc:
                raise BadAudio(f"the audio cannot be decoded ({exc})") from None
            duration_s = samples / rate if samples else 0.0
        if duration_s <= 0:
            raise BadAudio("the file contains no audio samples")
        return AudioInfo(duration_s, channels, stream.codec_context.name,
                         container.format.name)
    finally:
        container.close()


def decode(path: str, *, keep_channels: bool,
           max_seconds: float | None = None) -> npt.NDArray[np.float32]:
    """The whole file at 16 kHz, shape (channels, samples): one row when mixed down. Stops with
    BadAudio past ``max_seconds``: headers can lie, and a small file of compressed silence
    can expand a thousandfold, so the limit is counted on decoded samples."""
    import av

    container = _open(path)
    try:
        stream = container.streams.audio[0]
        channels = min(stream.codec_context.channels or 1, MAX_CHANNELS)
        if keep_channels and channels > 1:
            layout = stream.codec_context.layout.name
        else:
            layout, channels = "mono", 1
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        parts: list[npt.NDArray[np.float32]] = []
        budget = math.inf if max_seconds is None else max_seconds * SAMPLE_RATE
        decoded = 0
        try:
            for frame in container.decode(stream):
                frame.pts = None  # decoding gaps must not make the resampler pad or drop
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray()[:channels])
                    decoded += parts[-1].shape[1]
                if decoded > budget:
                    raise BadAudio(f"the audio is longer than {max_seconds:g} s")
            for out in resampler.resample(None):
                parts.append(out.to_ndarray()[:channels])
        except av.FFmpegError as exc:
            raise BadAudio(f"the audio cannot be decoded ({exc})") from None
    finally:
        container.close()
    if not parts:
        raise BadAudio("the file contains no audio samples")
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
