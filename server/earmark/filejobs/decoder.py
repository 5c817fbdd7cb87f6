"""The decoder child (``python -m earmark.filejobs.decoder``): PyAV on an uploaded file.

    probe PATH                          -> {"duration_s", "channels", "codec", "container"}
    decode PATH OUT keep|mix MAX_SECONDS -> {"channels", "samples"}; OUT holds 16 kHz
                                           interleaved int16

The last stdout line is the JSON answer, or ``{"error": reason}`` for a file that is not
usable audio. Run only by ``audio_file``: a crash here ends this process, not the server.
Imports nothing of Earmark's but constants, so it starts in a fraction of a second.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import orjson

SAMPLE_RATE = 16000
MAX_CHANNELS = 8


class Refused(Exception):
    """The file is not usable audio; the message says why."""


def _open(path: str) -> Any:
    import av

    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise Refused(f"the body is not an audio file FFmpeg can read ({exc})") from None
    if not container.streams.audio:
        container.close()
        raise Refused("the file has no audio stream")
    if container.streams.audio[0].codec_context is None:
        # An audio stream FFmpeg has no decoder for (found by benchmarks/fuzz_decoders.py).
        container.close()
        raise Refused("the file's audio codec cannot be decoded")
    return container


def probe(path: str) -> dict[str, Any]:
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
            samples, rate = 0, 1
            try:
                for frame in container.decode(stream):
                    samples += frame.samples
                    rate = frame.sample_rate or rate
            except av.FFmpegError as exc:
                raise Refused(f"the audio cannot be decoded ({exc})") from None
            duration_s = samples / rate if samples else 0.0
        if duration_s <= 0 or not math.isfinite(duration_s):
            raise Refused("the file contains no audio samples")
        return {"duration_s": duration_s, "channels": channels,
                "codec": stream.codec_context.name, "container": container.format.name}
    finally:
        container.close()


def decode(path: str, out_path: str, keep_channels: bool, max_seconds: float) -> dict[str, Any]:
    import av
    import numpy as np

    container = _open(path)
    try:
        stream = container.streams.audio[0]
        source_channels = stream.codec_context.channels or 1
        if keep_channels and source_channels > 1:
            layout: Any = stream.codec_context.layout  # no remix: channels stay apart
            width, keep = source_channels, min(source_channels, MAX_CHANNELS)
        else:
            layout, width, keep = "mono", 1, 1
        # Packed s16, read from the one plane: PyAV's to_ndarray() on planar frames of 8 or
        # more channels reads past the frame (it counts 9 planes) and crashes.
        resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
        budget = max_seconds * SAMPLE_RATE
        written = 0
        with open(out_path, "wb") as out:
            def write(frames: list[Any]) -> None:
                nonlocal written
                for frame in frames:
                    n = frame.samples
                    if n <= 0:
                        continue
                    raw = np.frombuffer(memoryview(frame.planes[0]), dtype="<i2",
                                        count=n * width)
                    if keep != width:
                        raw = raw.reshape(n, width)[:, :keep]
                    out.write(np.ascontiguousarray(raw).tobytes())
                    written += n
            try:
                for frame in container.decode(stream):
                    frame.pts = None  # decoding gaps must not make the resampler pad or drop
                    write(resampler.resample(frame))
                    if written > budget:
                        raise Refused(f"the audio is longer than {max_seconds:g} s")
                write(resampler.resample(None))
            except av.FFmpegError as exc:
                raise Refused(f"the audio cannot be decoded ({exc})") from None
            except ValueError as exc:
                # PyAV: a frame whose format, layout or rate differs from the first one's
                # (found by benchmarks/fuzz_decoders.py on a corrupted multichannel file).
                raise Refused(f"the audio changes format mid-stream ({exc})") from None
    finally:
        container.close()
    if written == 0:
        raise Refused("the file contains no audio samples")
    return {"channels": keep, "samples": written}


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["probe"] and len(argv) == 2:
            answer = probe(argv[1])
        elif argv[:1] == ["decode"] and len(argv) == 5:
            answer = decode(argv[1], argv[2], argv[3] == "keep", float(argv[4]))
        else:
            print("usage: probe PATH | decode PATH OUT keep|mix MAX_SECONDS", file=sys.stderr)
            return 2
    except Refused as exc:
        answer = {"error": str(exc)}
    except MemoryError:
        answer = {"error": "decoding the file ran out of memory"}
    sys.stdout.write(orjson.dumps(answer).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
