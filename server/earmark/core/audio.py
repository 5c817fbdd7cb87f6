"""PCM conversion, resampling to 16 kHz mono, and framing into VAD windows."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from earmark.core import SAMPLE_RATE, WINDOW_SAMPLES
from earmark.errors import BadAudio

Samples = npt.NDArray[np.float32]

_BYTES_PER_SAMPLE = {"linear16": 2, "f32": 4}


class PcmDecoder:
    """Turns client audio frames into float32 mono samples at 16 kHz.

    One decoder per stream: the resampler keeps its filter state across frames, so frame
    boundaries leave no clicks (a new resampler per frame would lose that state).
    """

    def __init__(self, *, encoding: str, sample_rate: int, channels: int,
                 channel: int | None = None) -> None:
        """``channel``: keep only that channel of the interleaved frames (multichannel
        streams, one decoder per channel); None mixes the channels down."""
        if encoding not in _BYTES_PER_SAMPLE:
            raise ValueError(f"unsupported encoding {encoding!r}")
        if channel is not None and not 0 <= channel < channels:
            raise ValueError(f"channel {channel} of {channels}")
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channels = channels
        self.channel = channel
        self.frame_bytes = _BYTES_PER_SAMPLE[encoding] * channels
        self._resampler = (
            None
            if sample_rate == SAMPLE_RATE
            else soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        )
        self.input_samples = 0  # per channel, at the client's rate

    def decode(self, data: bytes) -> Samples:
        """Converts one binary frame. Raises BadAudio when its length cannot be whole samples."""
        if len(data) % self.frame_bytes:
            raise BadAudio(
                f"binary frame of {len(data)} bytes is not a whole number of {self.encoding} "
                f"samples x {self.channels} channel(s) ({self.frame_bytes} bytes each)"
            )
        if self.encoding == "linear16":
            pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        else:
            pcm = np.frombuffer(data, dtype="<f4").astype(np.float32)
            # Hostile or broken float input must not poison the model with NaN/inf.
            pcm = np.clip(np.nan_to_num(pcm, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        if self.channels > 1:
            frames = pcm.reshape(-1, self.channels)
            pcm = (frames.mean(axis=1, dtype=np.float32) if self.channel is None
                   else np.ascontiguousarray(frames[:, self.channel]))
        self.input_samples += len(pcm)
        return self._resample(pcm, last=False)

    def flush(self) -> Samples:
        """Returns the resampler's tail at the end of the stream."""
        return self._resample(np.zeros(0, dtype=np.float32), last=True)

    def _resample(self, pcm: Samples, *, last: bool) -> Samples:
        if self._resampler is None:
            return pcm
        return np.asarray(self._resampler.resample_chunk(pcm, last=last), dtype=np.float32)


class WindowFramer:
    """Collects samples and hands out whole 512-sample windows; keeps the remainder."""

    def __init__(self, window_samples: int = WINDOW_SAMPLES) -> None:
        self.window_samples = window_samples
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: Samples) -> Samples:
        """Returns the whole windows now available, concatenated (length a multiple of 512)."""
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        whole = len(samples) - len(samples) % self.window_samples
        self._pending = samples[whole:].copy()
        return samples[:whole]

    def flush(self) -> Samples:
        """Pads the remainder with silence to one last whole window (empty if none)."""
        if not len(self._pending):
            return self._pending
        out = np.zeros(self.window_samples, dtype=np.float32)
        out[: len(self._pending)] = self._pending
        self._pending = np.zeros(0, dtype=np.float32)
        return out


class AudioBuffer:
    """Session audio addressed by absolute sample index; the head can be trimmed away."""

    def __init__(self) -> None:
        self._chunks: list[Samples] = []
        self._data = np.zeros(0, dtype=np.float32)
        self.start_sample = 0  # absolute index of the first kept sample
        self.end_sample = 0  # absolute index one past the last sample

    def append(self, samples: Samples) -> None:
        if len(samples):
            self._chunks.append(samples)
            self.end_sample += len(samples)

    def _compact(self) -> None:
        if self._chunks:
            self._data = np.concatenate([self._data, *self._chunks])
            self._chunks = []

    def slice(self, start_sample: int, end_sample: int) -> Samples:
        """Copies [start, end); both must lie inside the kept range."""
        if start_sample < self.start_sample or end_sample > self.end_sample:
            raise IndexError(
                f"[{start_sample}, {end_sample}) outside [{self.start_sample}, {self.end_sample})"
            )
        self._compact()
        lo = start_sample - self.start_sample
        return self._data[lo : lo + (end_sample - start_sample)].copy()

    def trim_before(self, sample: int) -> None:
        """Forgets audio before ``sample`` (no-op if already trimmed past it)."""
        if sample <= self.start_sample:
            return
        self._compact()
        cut = min(sample, self.end_sample) - self.start_sample
        self._data = self._data[cut:].copy()
        self.start_sample += cut

