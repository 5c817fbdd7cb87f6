"""Live latency: one real-time stream of evaldata speech through the socket.

Streams a workload (``benchmarks/workloads.py``: ``gapped``, short_read utterances with 1-2 s
of silence; ``continuous``, the long reading and LJ utterances with 0.25 s pauses) paced in
real time (100 ms frames) to a server it starts (or ``--url``), and reports:

- final latency per word: when the first final holding the word arrives, minus when the end
  of that word's audio was sent;

- first-seen latency: when a word first shows up in any result (interim or final), minus when
  the end of that word's audio was sent;
- final latency: when the last final of an utterance arrives, minus when the end of that
  utterance's audio was sent (the recordings end with a little silence, so the same figure
  is also given from the end of the last recognised word);
- streaming WER of the finals against offline faster-whisper on the same audio and model;
- server CPU (cores busy) and peak RSS.

    python benchmarks/live_latency.py [--workload gapped|continuous] [--endpointing 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from _common import print_table, write_json
from workloads import NAMES, build

from earmark_eval import normalize, wer

ROOT = Path(__file__).resolve().parents[1]
CHUNK_S = 0.1


def start_server(port: int, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, "EARMARK_PORT": str(port), **extra_env}
    proc = subprocess.Popen([sys.executable, "-m", "earmark", "serve"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not become ready")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_stream(url: str, audio: np.ndarray, endpointing: int, tagging: bool = True,
                     options: str = ""):
    import websockets

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    step = int(16000 * CHUNK_S) * 2
    query = (f"?encoding=linear16&sample_rate=16000&interim_results=true&endpointing={endpointing}"
             f"&tagging={'true' if tagging else 'false'}" + (f"&{options}" if options else ""))
    received: list[tuple[float, dict]] = []
    async with websockets.connect(url + "/v1/listen" + query, max_size=None) as ws:
        t0 = time.monotonic()

        async def send() -> None:
            for i in range(0, len(pcm), step):
                due = t0 + (i // 2) / 16000
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await ws.send(pcm[i : i + step])
            await ws.send(json.dumps({"type": "CloseStream"}))

        sender = asyncio.create_task(send())
        async for raw in ws:
            received.append((time.monotonic() - t0, json.loads(raw)))
        await sender
    return received


def sent_at(audio_t: float) -> float:
    """Wall time (from stream start) at which audio time ``audio_t`` had been sent: frames
    are sent at their start time and hold CHUNK_S of audio."""
    return max(0.0, np.ceil(audio_t / CHUNK_S - 1e-9) * CHUNK_S - CHUNK_S)


def latencies(received, spans):
    results = [(t, m) for t, m in received if m.get("type") == "Results"]
    finals = [(t, m) for t, m in results if m["is_final"]]
    first_seen = []
    for _, fm in finals:
        for w in fm["channel"]["alternatives"][0]["words"]:
            key = normalize(w["word"])
            for t, m in results:
                hit = any(normalize(x["word"]) == key and abs(x["start"] - w["start"]) < 0.6
                          for x in m["channel"]["alternatives"][0]["words"])
                if hit:
                    first_seen.append(t - sent_at(w["end"]))
                    break
    final_lat, after_word = [], []
    for start, end in spans:
        hits = [(t, m["channel"]["alternatives"][0]["words"][-1]["end"]) for t, m in finals
                if m["channel"]["alternatives"][0]["words"]
                and start - 0.3 <= m["channel"]["alternatives"][0]["words"][-1]["end"]
                <= end + 0.5]
        if hits:
            arrival, last_word_end = max(hits)
            final_lat.append(arrival - sent_at(end))
            after_word.append(arrival - sent_at(last_word_end))
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for _, m in finals)
    per_word = [t - sent_at(w["end"]) for t, m in finals
                for w in m["channel"]["alternatives"][0]["words"]]
    return first_seen, final_lat, after_word, per_word, text


def offline_text(audio, model) -> str:
    """faster-whisper's own transcribe of the same stream, same model."""
    from faster_whisper import WhisperModel

    from earmark.inference.whisper import resolve_model

    fw = WhisperModel(resolve_model(model), device="cpu", compute_type="int8")
    segments, _ = fw.transcribe(audio, beam_size=5, language="en")
    return " ".join(s.text for s in segments)


def pct(values, q) -> float | None:
    return float(np.percentile(values, q)) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=NAMES, default="gapped")
    ap.add_argument("--items", type=int, default=10, help="utterances of the gapped workload")
    ap.add_argument("--endpointing", type=int, default=500)
    ap.add_argument("--tagging", choices=["true", "false"], default="true",
                    help="ask for Tags on the session (default true, as the server does)")
    ap.add_argument("--options", default="",
                    help="more query parameters, to measure what they add to latency "
                    "(e.g. diarize=true&topics=true&sentiment=true&redact=pii)")
    ap.add_argument("--url", default=None, help="use a running server instead of starting one")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    workload = build(args.workload, **({"n_items": args.items}
                                       if args.workload == "gapped" else {}))
    audio, spans = workload.audio, workload.spans
    proc = None
    url = args.url
    if url is None:
        port = 8765
        env = {"EARMARK_MODEL": args.model} if args.model else {}
        proc = start_server(port, env)
        url = f"ws://127.0.0.1:{port}"
    try:
        cpu0, wall0 = (proc_cpu_s(proc.pid) if proc else 0.0), time.monotonic()
        received = asyncio.run(run_stream(url, audio, args.endpointing,
                                          args.tagging == "true", args.options))
        wall = time.monotonic() - wall0
        cpu = (proc_cpu_s(proc.pid) - cpu0) / wall if proc else None
        rss = proc_peak_rss_mb(proc.pid) if proc else None
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)
    first_seen, final_lat, after_word, per_word, text = latencies(received, spans)
    refs = workload.reference
    streaming_wer = wer([refs], [text])
    offline = offline_text(audio, args.model)
    offline_wer = wer([refs], [offline])
    row = {
        "workload": args.workload,
        "audio_s": round(len(audio) / 16000, 1),
        "utterances": len(spans),
        "first_seen_p50_s": pct(first_seen, 50),
        "first_seen_p90_s": pct(first_seen, 90),
        "word_final_p50_s": pct(per_word, 50),
        "word_final_p90_s": pct(per_word, 90),
        "final_p50_s": pct(final_lat, 50),
        "final_p90_s": pct(final_lat, 90),
        # The utterance files end with some silence; this one counts from the last word.
        "final_after_last_word_p50_s": pct(after_word, 50),
        "endpointing_ms": args.endpointing,
        "tagging": args.tagging == "true",
        "options": args.options or "none",
        "wer_streaming": streaming_wer,
        "wer_offline": offline_wer,
        "server_cpu_cores": cpu,
        "server_peak_rss_mb": rss,
    }
    print(f"one real-time stream, {len(spans)} utterances, {row['audio_s']} s of audio")
    print_table([row], list(row))
    targets = {
        "first_seen_p50<=0.8s": row["first_seen_p50_s"] is not None
        and row["first_seen_p50_s"] <= 0.8,
        "final_p50<=endpointing+0.4s": row["final_p50_s"] is not None
        and row["final_p50_s"] <= args.endpointing / 1000 + 0.4,
        "wer<=offline+1pt": streaming_wer <= offline_wer + 0.01,
    }
    print("targets:", ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in targets.items()))
    write_json(f"live_latency_{args.workload}",
               {"result": row, "targets": targets, "first_seen_s": first_seen,
                "final_s": final_lat, "word_final_s": per_word,
                "finals_text": text, "offline_text": offline,
                # Every Results as received, to see how a wrong final came about.
                "results": [{"t": round(t, 3), "is_final": m["is_final"],
                             "speech_final": m.get("speech_final"),
                             "start": m["start"], "duration": m["duration"],
                             "words": [(w["word"], w["start"], w["end"])
                                       for w in m["channel"]["alternatives"][0]["words"]]}
                            for t, m in received if m.get("type") == "Results"]}, args.out)


if __name__ == "__main__":
    main()
