"""WebRTC: how soon is every word final once the sender stops sending?

An aiortc peer plays short_read utterances from the evaldata (their own silences trimmed,
then ``--tail-s`` of silence) as an Opus track in real time, and after each one sends no
packets at all for ``--quiet-s`` seconds. The RTP timestamps jump over the quiet, as DTX's
do. No audio time passes on the server while no packets come, so only its wall clock can
bring the endpoint. Two ways senders stop:

- ``--tail-s 0.3`` (a comma list runs each): Opus DTX, or a file that ended: the encoder
  stops sending only once it has coded some silence (libopus needs about 200 ms of it);
- ``--tail-s 0``: a track paused or replaced mid-speech: the last packet is loud.

Per utterance: the time from the last packet to the last final that arrives before the next
utterance starts (every word final; the same from the end of the speech is that plus the
tail), to the ``speech_final`` Results, and the words of those finals against the
reference. An utterance whose last final came after the next one started
counts as late. Issue 19's bound: every word final within ``endpointing`` + 1 s.

    python benchmarks/webrtc_quiet.py [--items 10] [--quiet-s 3] [--endpointing 500,300]
                                      [--tail-s 0.3,0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse
from fractions import Fraction

import av
import httpx
import numpy as np
from _common import print_table, write_json
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from live_latency import start_server
from workloads import trim_silence

from earmark_eval import load_items, read_mono_16k, wer

PORT = 8769
SR = 16000
FRAME = 320  # 20 ms, as browsers send
LEAD_IN_S = 0.5  # quiet before the first utterance, as a microphone gives


class TalkThenGoQuiet(MediaStreamTrack):
    """Plays each utterance in real time, then returns no frame for ``quiet_s``."""

    kind = "audio"

    def __init__(self, utterances: list[np.ndarray], quiet_s: float) -> None:
        super().__init__()
        lead = np.zeros(int(LEAD_IN_S * SR), np.int16)
        self.pieces = [np.concatenate([lead, utterances[0]])] + utterances[1:]
        self.quiet_s = quiet_s
        self.piece = 0
        self.pos = 0  # samples sent of the current piece
        self.pts = 0  # RTP-side sample clock: jumps over the quiet
        self.t0: float | None = None
        self.quiet_at: list[float] = []  # monotonic time each utterance's last frame went
        self.starts: list[float] = []  # monotonic time each utterance's first frame went
        self.finished = asyncio.Event()

    async def recv(self) -> av.AudioFrame:
        pcm = self.pieces[self.piece] if self.piece < len(self.pieces) else None
        if pcm is not None and self.pos >= len(pcm):
            self.quiet_at.append(time.monotonic())
            self.piece += 1
            if self.piece == len(self.pieces):
                self.finished.set()
                await asyncio.Event().wait()  # nothing more until the peer closes
            await asyncio.sleep(self.quiet_s)
            self.pts += int(self.quiet_s * SR)
            self.pos, self.t0 = 0, None
            pcm = self.pieces[self.piece]
        assert pcm is not None
        if self.t0 is None:
            self.t0 = time.monotonic()
            self.starts.append(self.t0)
        await asyncio.sleep(max(0.0, self.t0 + self.pos / SR - time.monotonic()))
        chunk = np.pad(pcm[self.pos : self.pos + FRAME], (0, max(0, FRAME - (len(pcm) - self.pos))))
        frame = av.AudioFrame.from_ndarray(chunk[:FRAME].reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SR, self.pts, Fraction(1, SR)
        self.pos += FRAME
        self.pts += FRAME
        return frame


async def run(http: str, utterances: list[np.ndarray], quiet_s: float,
              endpointing: int) -> tuple[TalkThenGoQuiet, list[tuple[float, dict]]]:
    """Streams the utterances through one peer; returns the track and (arrival, message)."""
    track = TalkThenGoQuiet(utterances, quiet_s)
    received: list[tuple[float, dict]] = []
    ended = asyncio.Event()
    pc = RTCPeerConnection()
    try:
        channel = pc.createDataChannel("earmark")
        pc.addTrack(track)

        @channel.on("message")
        def _on_message(text: str) -> None:
            message = json.loads(text)
            received.append((time.monotonic(), message))
            if message.get("type") in ("Metadata", "Error"):
                ended.set()

        await pc.setLocalDescription(await pc.createOffer())
        query = urllib.parse.urlencode({"endpointing": endpointing, "tagging": "false"})
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{http}/v1/webrtc/offer?{query}",
                                         json={"type": "offer", "sdp": pc.localDescription.sdp})
        response.raise_for_status()
        answer = response.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        await asyncio.wait_for(track.finished.wait(), 60 + len(utterances) * (quiet_s + 30))
        await asyncio.sleep(quiet_s)
        channel.send(json.dumps({"type": "CloseStream"}))
        await asyncio.wait_for(ended.wait(), 60)
    finally:
        await pc.close()
    return track, received


def measure(track: TalkThenGoQuiet, received: list[tuple[float, dict]],
            references: list[str], endpointing: int, tail_s: float) -> tuple[dict, list[dict]]:
    per: list[dict] = []
    for i, ref in enumerate(references):
        quiet = track.quiet_at[i]
        window_end = track.starts[i + 1] if i + 1 < len(track.starts) else float("inf")
        window_start = track.starts[i]
        finals = [(t, m) for t, m in received if m.get("type") == "Results" and m["is_final"]
                  and window_start <= t < window_end
                  and m["channel"]["alternatives"][0]["words"]]
        words = " ".join(w["word"] for _, m in finals
                         for w in m["channel"]["alternatives"][0]["words"])
        after = [t for t, _ in finals if t >= quiet]
        speech_final = next((t for t, m in received if m.get("type") == "Results"
                             and m["speech_final"] and quiet <= t < window_end), None)
        per.append({"item": i, "reference": ref, "finals": words,
                    # every final of this utterance came before it went quiet: 0
                    "all_final_s": (max(after) - quiet) if after else (0.0 if finals else None),
                    "speech_final_s": None if speech_final is None else speech_final - quiet})
    done = [p["all_final_s"] for p in per if p["all_final_s"] is not None]
    ends = [p["speech_final_s"] for p in per if p["speech_final_s"] is not None]
    bound = endpointing / 1000 + 1.0
    late = sum(p["all_final_s"] is None or p["all_final_s"] > bound for p in per)
    row = {
        "tail_s": tail_s,
        "endpointing_ms": endpointing,
        "utterances": len(per),
        "all_final_p50_s": float(np.percentile(done, 50)) if done else None,
        "all_final_p90_s": float(np.percentile(done, 90)) if done else None,
        "all_final_max_s": max(done) if done else None,
        "after_speech_p90_s": float(np.percentile(done, 90)) + tail_s if done else None,
        "speech_final_p50_s": float(np.percentile(ends, 50)) if ends else None,
        "speech_final_missing": len(per) - len(ends),
        "bound_s": bound,
        "over_bound": late,
        "wer": wer(references, [p["finals"] for p in per]),
    }
    return row, per


COLUMNS = ["tail_s", "endpointing_ms", "utterances", "all_final_p50_s", "all_final_p90_s",
           "all_final_max_s", "after_speech_p90_s", "speech_final_p50_s", "speech_final_missing",
           "bound_s", "over_bound", "wer"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10)
    ap.add_argument("--quiet-s", type=float, default=3.0)
    ap.add_argument("--endpointing", default="500,300")
    ap.add_argument("--tail-s", default="0.3,0")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    items = [it for it in load_items("short_read") if it.reference][: args.items]
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    speech = [(np.clip(trim_silence(read_mono_16k(it.path).astype(np.float32)), -1, 1)
               * 32767).astype(np.int16) for it in items]
    references = [it.reference or "" for it in items]
    proc = start_server(PORT, {})
    rows, details = [], []
    try:
        for tail_s in (float(x) for x in args.tail_s.split(",")):
            tail = np.zeros(int(tail_s * SR), np.int16)
            utterances = [np.concatenate([s, tail]) for s in speech]
            for ep in (int(x) for x in args.endpointing.split(",")):
                track, received = asyncio.run(run(f"http://127.0.0.1:{PORT}", utterances,
                                                  args.quiet_s, ep))
                row, per = measure(track, received, references, ep, tail_s)
                rows.append(row)
                details.append({"tail_s": tail_s, "endpointing_ms": ep, "utterances": per})
                print_table([row], COLUMNS)
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"{'-' * 60}\nall:")
    print_table(rows, COLUMNS)
    write_json("webrtc_quiet", {"quiet_s": args.quiet_s, "rows": rows, "details": details},
               args.out)


if __name__ == "__main__":
    main()
