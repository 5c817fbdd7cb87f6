"""Coverage-guided fuzzing (atheris / libFuzzer) of the audio decoders, bounded in time.

Targets: the file-job decoder (the decoder child's probe + decode of an uploaded file, run
in-process here), the /v2/stream WAV and PCM decoder, the live PCM frame decoder and the
socket's control-message parser. Seeds are small real files FFmpeg makes (WAV, MP3, Ogg/Opus,
FLAC, AAC in MP4, and multichannel layouts: 8 and 16 float channels, 7.1 FLAC, 5.1 AAC,
3-channel 24-bit PCM in Matroska). An input passes when it decodes or raises the documented
error (EarmarkError, or the child's Refused); any other exception is a crash, and so is
an input that takes over 10 s or more than 2 GB of memory. Each target runs in its own
process for ``--seconds``.

    pip install atheris   # or: pip install -e '.[fuzz]'
    python benchmarks/fuzz_decoders.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import print_table, write_json

TARGETS = ("file_decoder", "sync_decoder", "pcm_frames", "control_messages")


def _seeds(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tone = ["-f", "lavfi", "-i", "sine=frequency=300:duration=0.5", "-ar", "16000"]
    for name, extra in {"a.wav": [], "a.mp3": ["-c:a", "libmp3lame"],
                        "a.ogg": ["-c:a", "libopus"], "a.flac": [],
                        "a.m4a": ["-c:a", "aac"]}.items():
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *tone, *extra,
                        str(folder / name)], check=False)
    # Multichannel and layout cases (8 and 16 float channels crashed PyAV's planar
    # to_ndarray); short, so each stays under -max_len.
    short = ["-f", "lavfi", "-i", "sine=frequency=300:duration=0.1", "-ar", "16000"]
    for name, extra in {"c8.wav": ["-ac", "8", "-c:a", "pcm_f32le"],
                        "c16.wav": ["-ac", "16", "-c:a", "pcm_f32le"],
                        "c71.flac": ["-af", "pan=7.1|" + "|".join(f"c{i}=c0" for i in range(8))],
                        "c51.m4a": ["-ac", "6", "-c:a", "aac"],
                        "c3.mka": ["-ac", "3", "-c:a", "pcm_s24le"]}.items():
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *short, *extra,
                        str(folder / name)], check=False)
    (folder / "ctl.json").write_text('{"type": "KeepAlive"}')


def _child(target: str) -> None:
    import atheris

    # Third-party modules first, uninstrumented: instrumenting all of FastAPI and pydantic
    # costs a minute of start-up and tells us nothing about our own parsers.
    import av  # noqa: F401
    import fastapi  # noqa: F401
    import numpy  # noqa: F401
    import orjson  # noqa: F401
    import pydantic  # noqa: F401
    import soxr  # noqa: F401

    with atheris.instrument_imports(include=["earmark"]):
        from earmark.api.sync_routes import decode_audio
        from earmark.core.audio import PcmDecoder
        from earmark.dialects.deepgram import parse_control
        from earmark.errors import EarmarkError
        from earmark.filejobs.decoder import Refused, decode, probe

    scratch = Path(tempfile.mkdtemp(prefix="earmark-fuzz-")) / "input"

    def file_decoder(data: bytes) -> None:
        scratch.write_bytes(data)
        try:
            probe(str(scratch))
            decode(str(scratch), str(scratch) + ".pcm", True, 600.0)
        except Refused:
            pass

    def sync_decoder(data: bytes) -> None:
        try:
            decode_audio(data)
        except EarmarkError:
            pass

    def pcm_frames(data: bytes) -> None:
        if len(data) < 2:
            return
        fdp = atheris.FuzzedDataProvider(data)
        decoder = PcmDecoder(encoding=fdp.PickValueInList(["linear16", "f32"]),
                             sample_rate=fdp.PickValueInList([8000, 16000, 44100, 48000]),
                             channels=fdp.ConsumeIntInRange(1, 8))
        while fdp.remaining_bytes():
            try:
                decoder.decode(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096)))
            except EarmarkError:
                pass
        decoder.flush()

    def control_messages(data: bytes) -> None:
        try:
            parse_control(data.decode("utf-8", "replace"))
        except EarmarkError:
            pass

    fn = {"file_decoder": file_decoder, "sync_decoder": sync_decoder,
          "pcm_frames": pcm_frames, "control_messages": control_messages}[target]
    atheris.Setup(sys.argv[:1] + sys.argv[3:], fn)
    atheris.Fuzz()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=120, help="per target")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "seeds"
        _seeds(corpus)
        for target in args.targets.split(","):
            started = time.monotonic()
            work = Path(tmp) / target
            work.mkdir()
            proc = subprocess.run(
                [sys.executable, __file__, "--child", target,
                 f"-max_total_time={args.seconds}", "-timeout=10", "-rss_limit_mb=2048",
                 "-max_len=65536", f"-artifact_prefix={work}/", str(work), str(corpus)],
                capture_output=True, text=True, check=False)
            log = proc.stdout + proc.stderr
            runs = re.findall(r"Done (\d+) runs", log)
            cov = re.findall(r"cov: (\d+)", log)
            crashed = proc.returncode != 0
            rows.append({"target": target, "seconds": round(time.monotonic() - started),
                         "runs": int(runs[-1]) if runs else 0,
                         "coverage": int(cov[-1]) if cov else 0,
                         "crashes": 1 if crashed else 0,
                         "finding": _finding(log) if crashed else ""})
            if crashed:
                print(log[-3000:], file=sys.stderr)
    print_table(rows, list(rows[0]))
    write_json("fuzz_decoders", {"seconds_per_target": args.seconds, "targets": rows}, args.out)
    if any(r["crashes"] for r in rows):
        raise SystemExit(1)


def _finding(log: str) -> str:
    for line in log.splitlines():
        if "Error" in line or "Exception" in line or "timeout" in line or "rss" in line:
            return line.strip()[:160]
    return "non-zero exit"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        main()
