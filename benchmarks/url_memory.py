"""Memory while pulling a URL: a 1080p video source against the same audio alone.

Makes a 1080p H.264 + AAC mp4 and an AAC-only m4a of the same speech with FFmpeg, serves
both over HTTP on loopback, and pulls each through ``/v1/listen?url=`` on a fresh server.
Reports the server's peak RSS above its idle RSS for each, and the difference (target: the
video source costs no more than 50 MB over its audio alone, since video is never decoded).

    python benchmarks/url_memory.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import json
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from _common import print_table, write_json
from live_latency import proc_peak_rss_mb, start_server

PORT = 8768


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_media(root: Path, seconds: float) -> None:
    speech = root / "speech.wav"
    # Varied sentences: a loop of one sentence reads as a Whisper decoding loop and is dropped.
    text = ("I would like to order a large pizza with extra cheese. Thank you very much for "
            "your help with this project. The weather is nice today, so we are walking to the "
            "park. My favourite colour is blue and I like to read books in the evening. "
            "Please call me back tomorrow morning before nine o'clock. ")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(speech), text], check=True)
    audio = ["-stream_loop", "-1", "-i", str(speech), "-t", str(seconds)]
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=1920x1080:rate=30:duration={seconds}", *audio,
                    "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart",
                    str(root / "video1080p.mp4")], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(root / "video1080p.mp4"),
                    "-vn", "-c:a", "copy", "-movflags", "+faststart", str(root / "audio.m4a")],
                   check=True)


async def pull(url: str) -> int:
    import websockets

    query = urllib.parse.urlencode({"url": url, "interim_results": "false"})
    finals = 0
    async with websockets.connect(f"ws://127.0.0.1:{PORT}/v1/listen?{query}") as ws:
        async for raw in ws:
            msg = json.loads(raw)
            finals += msg.get("type") == "Results" and msg["is_final"]
    return finals


def measure(url: str) -> dict:
    proc = start_server(PORT, {"EARMARK_URL_ALLOW_NETWORKS": "127.0.0.0/8"})
    try:
        time.sleep(1.0)
        idle = rss_mb(proc.pid)
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(rss_mb(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.monotonic()
        finals = asyncio.run(pull(url))
        wall = time.monotonic() - t0
        done.set()
        sampler.join()
        return {"idle_rss_mb": idle, "peak_rss_mb": max(samples),
                "peak_over_idle_mb": max(samples) - idle, "hwm_mb": proc_peak_rss_mb(proc.pid),
                "finals": finals, "wall_s": wall}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_media(root, args.seconds)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=tmp)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        rows = []
        try:
            for name in ("audio.m4a", "video1080p.mp4"):
                row = {"source": name, "size_mb": (root / name).stat().st_size / 2**20,
                       **measure(f"{base}/{name}")}
                rows.append(row)
        finally:
            httpd.shutdown()
            httpd.server_close()
    print_table(rows, list(rows[0]))
    delta = rows[1]["peak_over_idle_mb"] - rows[0]["peak_over_idle_mb"]
    print(f"\n1080p video source over audio alone: {delta:+.1f} MB (target <= 50 MB)")
    write_json("url_memory", {"rows": rows, "video_minus_audio_mb": delta,
                              "seconds": args.seconds}, args.out)


if __name__ == "__main__":
    main()
