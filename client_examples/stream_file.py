#!/usr/bin/env python3
"""Stream an audio file (anything PyAV decodes) or the microphone to Earmark, in real time.

    python client_examples/stream_file.py speech.mp3
    python client_examples/stream_file.py --mic            # needs `pip install sounddevice`
    python client_examples/stream_file.py talk.wav --url ws://host:8000 --key KEY --speed 0

Prints interim lines (prefixed ``..``) as they change and final lines with their times.
Needs: ``pip install websockets av``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
import urllib.parse

import websockets

CHUNK_MS = 100


def decode_file(path: str) -> bytes:
    """Decodes any audio/video file to 16 kHz mono 16-bit PCM with PyAV."""
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
    out = bytearray()
    with av.open(path) as container:
        stream = next(s for s in container.streams if s.type == "audio")
        for frame in container.decode(stream):
            for piece in resampler.resample(frame):
                out += piece.to_ndarray().tobytes()
        for piece in resampler.resample(None):
            out += piece.to_ndarray().tobytes()
    return bytes(out)



def one_line(prefix: str, text: str, width: int | None = None) -> str:
    """The interim as it fits on one terminal line: its newest words, since "\\r" can only
    rewrite the last line of a wrapped one (a wide interim left stale lines behind)."""
    width = width or shutil.get_terminal_size().columns
    room = max(8, width - len(prefix) - 1)
    if len(text) > room:
        text = "…" + text[len(text) - room + 1:]
    return prefix + text

async def file_chunks(pcm: bytes, speed: float):
    step = 16000 * 2 * CHUNK_MS // 1000
    started = time.monotonic()
    for i in range(0, len(pcm), step):
        if speed > 0:
            due = started + (i / 32000) / speed
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        yield pcm[i : i + step]


async def mic_chunks():
    import sounddevice  # optional dependency for --mic

    queue: asyncio.Queue[bytes] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def callback(indata, frames, t, status):  # noqa: ANN001 - sounddevice signature
        loop.call_soon_threadsafe(queue.put_nowait, bytes(indata))

    with sounddevice.RawInputStream(samplerate=16000, channels=1, dtype="int16",
                                    blocksize=16000 * CHUNK_MS // 1000, callback=callback):
        print("listening; Ctrl-C to stop", file=sys.stderr)
        while True:
            yield await queue.get()


async def run(args: argparse.Namespace) -> None:
    params = {"encoding": "linear16", "sample_rate": 16000, "channels": 1,
              "interim_results": "true", "punctuate": "true", "vad_events": "true"}
    url = f"{args.url.rstrip('/')}/v1/listen?{urllib.parse.urlencode(params)}"
    headers = {"Authorization": f"Token {args.key}"} if args.key else {}
    chunks = mic_chunks() if args.mic else file_chunks(decode_file(args.file), args.speed)
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:

        async def send() -> None:
            async for chunk in chunks:
                await ws.send(chunk)
            await ws.send(json.dumps({"type": "CloseStream"}))

        sender = asyncio.create_task(send())
        async for raw in ws:
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "Results":
                text = msg["channel"]["alternatives"][0]["transcript"]
                if msg["is_final"]:
                    if text:
                        end = msg["start"] + msg["duration"]
                        print(f"\r[{msg['start']:7.2f}-{end:7.2f}] {text}\033[K")
                elif text:
                    print(f"\r{one_line('.. ', text)}\033[K", end="", flush=True)
            elif kind == "Error":
                print(f"\nerror {msg.get('variant')}: {msg.get('description')}", file=sys.stderr)
            elif kind == "Metadata":
                print(f"\n(done: {msg['duration']:.1f} s of audio)", file=sys.stderr)
        await sender


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("file", nargs="?", help="audio file to stream")
    ap.add_argument("--mic", action="store_true", help="stream the default microphone")
    ap.add_argument("--url", default="ws://127.0.0.1:8000", help="server base URL")
    ap.add_argument("--key", default=None, help="API key, when the server has keys")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="1 = real time, 2 = twice as fast, 0 = as fast as possible")
    args = ap.parse_args()
    if not args.mic and not args.file:
        ap.error("give a file or --mic")
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
