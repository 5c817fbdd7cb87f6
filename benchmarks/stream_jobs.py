"""Stream jobs (seed 004): how soon each 5 s segment's callback arrives, on a live feed.

A workload (``workloads.py``; ``continuous`` by default: the 90 s reading, then LJ readings
with 0.25 s pauses) is played as a live MPEG-TS/AAC feed by ``ffmpeg -re`` (one player, in
real time). A server this starts pulls it as a stream job; a webhook receiver on loopback
records when each segment callback arrives. It reports:

- callback latency per segment: arrival minus the moment the segment's end was played. The
  feed's clock is taken to start when the start request returned; the server connects to the
  feed a little later, so this overstates the latency by that connection time;
- words at the segment boundaries: the same word (text and start) in two segments
  (duplicated), and the WER of all the segments' words against the reference, next to
  faster-whisper offline on the same audio (a word dropped at a boundary shows there);
- words sent in a later segment than the one holding their midpoint: final only after that
  segment's deadline (``--stream-segment-deadline-s``) had sent it;
- partial callbacks (the open segment so far), and how soon after a segment's start its
  first partial arrives (p50).

    python benchmarks/stream_jobs.py [--workload continuous|gapped] [--seconds 90]
                                     [--deadline-s 1.5]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from _common import print_table, write_json
from live_latency import offline_text, start_server
from workloads import NAMES, build

from earmark_eval import wer

PORT = 8767
SEGMENT_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Records each callback's body and when it arrived."""

    def __init__(self) -> None:
        self.got: list[tuple[float, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.got.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def call(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=NAMES, default="continuous")
    ap.add_argument("--seconds", type=float, default=90.0,
                    help="continuous: recordings are added until the feed is this long")
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="--stream-segment-deadline-s for the server (0: wait for every word; "
                    "default: the server's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    # The whole workload is played (a recording cut short would count as dropped words).
    work = build(args.workload, **({"max_s": args.seconds} if args.workload == "continuous"
                                   else {}))
    audio = np.concatenate([work.audio, np.zeros(16000 * 2, np.float32)])
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()

    receiver = Receiver()
    http = f"http://127.0.0.1:{PORT}"
    with tempfile.TemporaryDirectory() as tmp:
        # Its own data dir: a task left running must not resume in another server.
        proc = start_server(PORT, {"EARMARK_URL_ALLOW_NETWORKS": "127.0.0.0/8",
                                   "EARMARK_STREAM_NO_DATA_S": "4",
                                   "EARMARK_STREAM_WEBHOOK_URL": receiver.url,
                                   "EARMARK_DATA_DIR": str(Path(tmp) / "data"),
                                   **({"EARMARK_STREAM_SEGMENT_DEADLINE_S": str(args.deadline_s)}
                                      if args.deadline_s is not None else {})})
        raw = Path(tmp) / "feed.raw"
        raw.write_bytes(pcm)
        feed = f"http://127.0.0.1:{free_port()}/live.ts"
        publisher = subprocess.Popen(
            ["ffmpeg", "-loglevel", "error", "-re", "-f", "s16le", "-ar", "16000", "-ac", "1",
             "-i", str(raw), "-c:a", "aac", "-f", "mpegts", "-listen", "1", feed])
        try:
            time.sleep(1.5)  # the publisher listens once it has started
            r = call("POST", f"{http}/audio-stream/start", {"audio_url": feed})
            t0 = time.monotonic()
            task = r["data"]["task_id"]
            deadline = t0 + len(audio) / 16000 + 60
            while time.monotonic() < deadline and not any(
                    b["data"].get("status", 0) != 0 for _, b in receiver.got):
                time.sleep(0.2)
        finally:
            publisher.kill()
            proc.terminate()
            proc.wait(30)
    mine = [(t, b["data"]) for t, b in receiver.got if b.get("task_id") == task]
    partials = [(t, d) for t, d in mine if d.get("message_type") == "PartialTranscript"]
    segments = [(t, d) for t, d in mine if d.get("status", 0) == 0
                and d.get("message_type") != "PartialTranscript"]
    # First partial of each segment: how soon its words start to show.
    first_partial: dict[int, float] = {}
    for t, d in partials:
        first_partial.setdefault(d["segment_index"], t - (t0 + float(d["segment_start_time"])))
    latency, seg_words, late = [], [], 0
    for t, d in segments:
        end = float(d["segment_end_time"])
        start_ms = float(d["segment_start_time"]) * 1000
        if float(d["segment_start_time"]) + SEGMENT_S - 0.01 <= end:  # a whole segment
            latency.append(t - (t0 + end))
        ws = (d.get("transcript") or {}).get("words") or []
        seg_words.append([(w["text"], int(w["start"])) for w in ws])
        # Final after the segment's deadline: sent in a later segment than its midpoint's.
        late += sum((w["start"] + w["end"]) / 2 < start_ms for w in ws)
    duplicated = sum(len(set(a) & set(b))
                     for a, b in zip(seg_words, seg_words[1:], strict=False))
    text = " ".join(w for ws in seg_words for w, _ in ws)
    reference = work.reference
    row = {
        "workload": args.workload, "audio_s": round(len(audio) / 16000, 1),
        "segments": len(segments),
        "callback_p50_s": pct(latency, 50), "callback_p90_s": pct(latency, 90),
        "callback_max_s": max(latency) if latency else None,
        "deadline_s": args.deadline_s, "partial_callbacks": len(partials),
        "first_partial_after_segment_start_p50_s": pct(list(first_partial.values()), 50),
        "words": sum(len(ws) for ws in seg_words), "duplicated_at_boundaries": duplicated,
        "words_in_a_later_segment": late,
        "wer_segments": wer([reference], [text]),
        "wer_offline": wer([reference], [offline_text(audio, None)]),
    }
    print("one stream job on a real-time MPEG-TS/AAC feed, tiny.en on this machine's CPU")
    print_table([row], list(row))
    ok = row["callback_p90_s"] is not None and row["callback_p90_s"] <= 2.0
    print(f"\ntarget: callback p90 <= 2.0 s: {'PASS' if ok else 'FAIL'}")
    write_json(f"stream_jobs_{args.workload}", {"row": row, "latencies_s": latency}, args.out)


def pct(values, q) -> float | None:  # noqa: ANN001
    return float(np.percentile(values, q)) if values else None


if __name__ == "__main__":
    main()
