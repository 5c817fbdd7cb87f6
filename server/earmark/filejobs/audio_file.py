"""Uploaded audio files: probing and decoding with PyAV (FFmpeg), in a child process.

The container and codec are detected from the bytes; the client's Content-Type is never
trusted. Anything FFmpeg decodes is accepted if it has an audio stream.

FFmpeg and PyAV parse hostile bytes, and a bug there is a crash, not an exception (an
8-channel float WAV made PyAV read past a frame's planes and segfault the server). So every
uploaded file is probed and decoded by ``python -m earmark.filejobs.decoder``, a child that
holds no sessions: a crash or a hang there is the job's failure (``BadAudio``), never the
server's. The child streams 16 kHz 16-bit PCM to a file, so memory stays bounded whatever the
file expands to (a small FLAC of hours of silence), and ``DecodedAudio`` reads rows back in
pieces.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from earmark.errors import BadAudio

logger = logging.getLogger(__name__)

MAX_CHANNELS = 8
PROBE_TIMEOUT_S = 60.0
# A decode reads the whole file; a 4-hour file decodes in about a minute on one core.
DECODE_TIMEOUT_S = 900.0
SAMPLE_BYTES = 2  # int16 on disk
DECODER_MODULE = "earmark.filejobs.decoder"


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float
    channels: int
    codec: str
    container: str


class Row:
    """One channel of a ``DecodedAudio``: ``len()`` and slicing give float32 samples, read from
    the file only where asked (what the VAD, the chunks and the speaker encoder need)."""

    def __init__(self, audio: DecodedAudio, channel: int) -> None:
        self._audio = audio
        self._channel = channel

    def __len__(self) -> int:
        return self._audio.samples

    def __getitem__(self, key: slice) -> npt.NDArray[np.float32]:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a Row takes contiguous slices only")
        start, stop, _ = key.indices(self._audio.samples)
        return self._audio.read(start, stop)[self._channel]


@dataclass(frozen=True)
class DecodedAudio:
    """16 kHz audio in a file of interleaved little-endian int16, ``channels`` wide."""

    path: str
    channels: int
    samples: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.channels, self.samples)

    def read(self, start: int, stop: int) -> npt.NDArray[np.float32]:
        """Samples ``[start, stop)`` of every channel, shape (channels, n), as float32."""
        start, stop = max(0, start), min(self.samples, stop)
        count = max(0, stop - start) * self.channels
        raw = np.fromfile(self.path, dtype="<i2", count=count,
                          offset=start * self.channels * SAMPLE_BYTES)
        return (raw.reshape(-1, self.channels).T.astype(np.float32) / 32768.0)

    def row(self, channel: int) -> Row:
        return Row(self, channel)

    def rows(self) -> list[Row]:
        return [Row(self, c) for c in range(self.channels)]

    def array(self) -> npt.NDArray[np.float32]:
        """All of it in memory: for short audio (tests, small files)."""
        return np.ascontiguousarray(self.read(0, self.samples))

    def remove(self) -> None:
        Path(self.path).unlink(missing_ok=True)


def _run_child(args: list[str], timeout_s: float) -> dict[str, object]:
    """Runs the decoder child; its last stdout line is a JSON answer or error."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        proc = subprocess.run([sys.executable, "-m", DECODER_MODULE, *args],
                              capture_output=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise BadAudio(f"decoding the file took longer than {timeout_s:.0f} s; it is "
                       "refused") from None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise BadAudio(f"the decoder crashed on this file ({name}); the file is refused")
    lines = proc.stdout.strip().splitlines()
    try:
        answer = orjson.loads(lines[-1]) if lines else None
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        logger.warning("decoder child failed: %s", proc.stderr.decode(errors="replace")[-2000:])
        raise BadAudio(f"the decoder failed on this file (exit status {proc.returncode})")
    if "error" in answer:
        raise BadAudio(str(answer["error"]))
    return answer


def probe(path: str) -> AudioInfo:
    """Reads the headers (and, when they give no duration, decodes to count samples)."""
    got = _run_child(["probe", path], PROBE_TIMEOUT_S)
    return AudioInfo(float(got["duration_s"]), int(got["channels"]),  # type: ignore[arg-type]
                     str(got["codec"]), str(got["container"]))


def decode(path: str, out_path: str, *, keep_channels: bool,
           max_seconds: float | None = None) -> DecodedAudio:
    """The whole file at 16 kHz into ``out_path``: ``channels`` rows (one when mixed down,
    at most ``MAX_CHANNELS``). Fails with BadAudio past ``max_seconds``: headers can lie, and a
    small file of compressed silence can expand a thousandfold, so the limit is counted on
    decoded samples."""
    args = ["decode", path, out_path, "keep" if keep_channels else "mix",
            "inf" if max_seconds is None else repr(float(max_seconds))]
    try:
        got = _run_child(args, DECODE_TIMEOUT_S)
    except BaseException:
        Path(out_path).unlink(missing_ok=True)
        raise
    return DecodedAudio(out_path, int(got["channels"]),  # type: ignore[call-overload]
                        int(got["samples"]))  # type: ignore[call-overload]
