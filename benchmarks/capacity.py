"""Capacity: N simultaneous real-time streams until the server falls behind.

Each stream is a different evaldata session, paced in real time:

- ``--workload gapped``: short_read utterances in the stream's own order, joined with 1-2 s
  of silence (the easy case);
- ``--workload continuous``: the LJ readings (their own silences trimmed) in the stream's own
  order, joined with 100-350 ms pauses (continuous talk, as live feeds bring it).

Per N it reports first-seen latency, final latency per utterance and per word (the first final
holding the word, minus the end of the word's audio) at p50/p90, WER of the finals and of
faster-whisper offline on the same streams, the growth of the largest session lag (s of lag
per s), server CPU and RSS, and the batch sizes the scheduler formed. It also measures the
raw-model limit: the same utterances decoded offline in one process at the largest useful
batch size (audio seconds per wall second).

capacity (gapped)     = the largest N whose per-utterance final p90 stays under 2 s
capacity (continuous) = the largest N whose per-word final p90 stays at or under 3 s and
                        whose WER is within 2 points of offline
(both with no lag growth and no final missing)
efficiency = capacity x 1 audio-s/s / raw-model throughput

    python benchmarks/capacity.py [--workload gapped|continuous] [--streams 1,2,4,8,16]
                                  [--seconds 45]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
from _common import print_table, write_json
from live_latency import (
    latencies,
    offline_text,
    proc_cpu_s,
    proc_peak_rss_mb,
    run_stream,
    start_server,
)
from workloads import trim_silence

from earmark_eval import load_items, read_mono_16k, wer

PORT = 8766


PAUSES_S = {"gapped": (1.0, 2.0), "continuous": (0.1, 0.35)}


def sessions(n: int, seconds: float, workload: str = "gapped"):
    items = [it for it in load_items("short_read") if it.reference]
    if workload == "continuous":
        items = [it for it in items if it.id.startswith("lj_")]
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    low, high = PAUSES_S[workload]
    out = []
    for k in range(n):
        rng = np.random.default_rng(100 + k)
        order = rng.permutation(len(items))
        parts = [np.zeros(int(rng.uniform(0.2, 2.0) * 16000), np.float32)]
        spans, refs, pos = [], [], len(parts[0])
        for idx in order:
            if pos / 16000 >= seconds:
                break
            audio = read_mono_16k(items[idx].path)
            if workload == "continuous":
                audio = trim_silence(audio)
            spans.append((pos / 16000, (pos + len(audio)) / 16000))
            refs.append(items[idx].reference)
            gap = np.zeros(int(rng.uniform(low, high) * 16000), np.float32)
            parts += [audio, gap]
            pos += len(audio) + len(gap)
        parts.append(np.zeros(16000, np.float32))  # the last words' endpoint
        out.append((np.concatenate(parts), spans, " ".join(refs)))
    return out


OFFLINE_CACHE = Path(__file__).resolve().parent / "results" / "offline_text_cache.json"


def offline_wer(streams) -> float:
    """faster-whisper offline on the same streams (cached: it never changes)."""
    known = json.loads(OFFLINE_CACHE.read_text()) if OFFLINE_CACHE.exists() else {}
    texts, refs = [], []
    for audio, _, ref in streams:
        key = hashlib.sha1(audio.tobytes()).hexdigest()
        if key not in known:
            known[key] = offline_text(audio, None)
            OFFLINE_CACHE.parent.mkdir(parents=True, exist_ok=True)
            OFFLINE_CACHE.write_text(json.dumps(known))
        texts.append(known[key])
        refs.append(ref)
    return wer(refs, texts)


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.eE+-]+|NaN)$", line)
        if m:
            values[m.group(1)] = float(m.group(2))
    return values


async def run_level(n: int, seconds: float, base: str, http: str, workload: str = "gapped"):
    streams = sessions(n, seconds, workload)
    lag_samples: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def poll() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            try:
                m = await asyncio.to_thread(scrape, http + "/metrics")
                lag_samples.append((time.monotonic() - t0,
                                    m.get("earmark_session_lag_max_seconds", 0.0)))
            except OSError:
                pass
            await asyncio.sleep(1.0)

    poller = asyncio.create_task(poll())
    before = await asyncio.to_thread(scrape, http + "/metrics")
    received = await asyncio.gather(*(run_stream(base, audio, 500) for audio, _, _ in streams))
    stop.set()
    await poller
    after = await asyncio.to_thread(scrape, http + "/metrics")
    first_seen, finals_lat, word_lat, texts, refs = [], [], [], [], []
    for (_audio, spans, ref), rec in zip(streams, received, strict=True):
        fs, fl, _, per_word, text = latencies(rec, spans)
        first_seen += fs
        finals_lat += fl
        word_lat += per_word
        texts.append(text)
        refs.append(ref)
    # Lag growth: slope of the largest session lag over the run (s of lag per s).
    if len(lag_samples) >= 4:
        t, lag = np.array(lag_samples).T
        slope = float(np.polyfit(t, lag, 1)[0])
    else:
        slope = 0.0
    batches = after.get("earmark_batch_size_count", 0) - before.get("earmark_batch_size_count", 0)
    requests = after.get("earmark_batch_size_sum", 0) - before.get("earmark_batch_size_sum", 0)
    return {
        "streams": n,
        "first_seen_p50_s": _p(first_seen, 50), "first_seen_p90_s": _p(first_seen, 90),
        "final_p50_s": _p(finals_lat, 50), "final_p90_s": _p(finals_lat, 90),
        "word_final_p50_s": _p(word_lat, 50), "word_final_p90_s": _p(word_lat, 90),
        "finals_missing": sum(len(s[1]) for s in streams) - len(finals_lat),
        "wer": wer(refs, texts),
        "wer_offline": offline_wer(streams),
        "lag_max_s": max((v for _, v in lag_samples), default=0.0),
        "lag_slope": slope,
        "mean_batch": requests / batches if batches else None,
        "refused": after.get("earmark_sessions_refused_total", 0)
        - before.get("earmark_sessions_refused_total", 0),
    }, [(round(t, 1), round(v, 2)) for t, v in lag_samples]


def within_capacity(row: dict, workload: str) -> bool:
    if row["lag_slope"] > 0.02 or row["finals_missing"] != 0:
        return False
    if workload == "continuous":
        return (row["word_final_p90_s"] is not None and row["word_final_p90_s"] <= 3.0
                and row["wer"] <= row["wer_offline"] + 0.02)
    return row["final_p90_s"] is not None and row["final_p90_s"] < 2.0


def _p(values, q):
    return float(np.percentile(values, q)) if values else None


def raw_throughput(max_batch: int, rounds: int = 3) -> dict:
    """Offline: the utterances decoded with the finals' settings, in batches of similar window
    size, by as many model workers as the server runs, each worker on its own thread; the
    median of ``rounds`` passes per batch size."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from earmark.config import Settings
    from earmark.inference.engine import limit_blas_threads
    from earmark.inference.whisper import DecodeOptions, WhisperBackend

    limit_blas_threads()  # as the server does

    settings = Settings()
    cores = os.cpu_count() or 2
    workers = settings.model_workers or min(2, cores)
    backend = WhisperBackend(settings.model, device=settings.device,
                             compute_type=settings.compute_type, num_workers=workers,
                             cpu_threads=settings.cpu_threads or max(1, cores // workers))
    audios = [read_mono_16k(it.path) for it in load_items("short_read") if it.reference] * 2
    audios.sort(key=lambda a: backend.frames_for(len(a)))
    # Rounds interleave the batch sizes and the median is kept: on a shared VM one pass can
    # be 20 % off either way, which would move the efficiency by as much.
    runs: dict[int, list[float]] = {b: [] for b in sorted({1, 2, 4, max_batch})}
    for _ in range(rounds):
        for batch in runs:
            chunks = [audios[i : i + batch] for i in range(0, len(audios), batch)]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda c: backend.transcribe_batch(
                    c, [DecodeOptions(settings.beam_size)] * len(c)), chunks))
            wall = time.perf_counter() - t0
            runs[batch].append(sum(len(a) for a in audios) / 16000 / wall)
    best = {b: float(np.median(v)) for b, v in runs.items()}
    return {"workers": workers, "rounds": rounds, "audio_s_per_s_by_batch": best,
            "runs": runs, "best": max(best.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=sorted(PAUSES_S), default="gapped")
    ap.add_argument("--streams", default="1,2,4,8,16")
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--max-sessions", type=int, default=64)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    levels = [int(x) for x in args.streams.split(",")]
    # Admission by measured capacity is off: this benchmark is what measures it.
    proc = start_server(PORT, {"EARMARK_MAX_SESSIONS": str(args.max_sessions),
                               "EARMARK_ADMIT_BY_CAPACITY": "false"})
    base, http = f"ws://127.0.0.1:{PORT}", f"http://127.0.0.1:{PORT}"
    rows = []
    lag_series: dict[int, list[tuple[float, float]]] = {}  # (s into the level, max lag s)
    try:
        for n in levels:
            cpu0, wall0 = proc_cpu_s(proc.pid), time.monotonic()
            row, lag_series[n] = asyncio.run(run_level(n, args.seconds, base, http,
                                                       args.workload))
            row = {"workload": args.workload, **row}
            row["server_cpu_cores"] = (proc_cpu_s(proc.pid) - cpu0) / (time.monotonic() - wall0)
            row["server_peak_rss_mb"] = proc_peak_rss_mb(proc.pid)
            rows.append(row)
            print_table([row], list(row))
            print()
            if (row["word_final_p90_s"] is None or row["word_final_p90_s"] > 6
                    or row["lag_slope"] > 0.1):
                break  # well past capacity: the next level only takes longer
    finally:
        proc.terminate()
        proc.wait(30)
    raw = raw_throughput(4)
    ok = [r for r in rows if within_capacity(r, args.workload)]
    capacity = max((r["streams"] for r in ok), default=0)
    efficiency = capacity / raw["best"] if raw["best"] else None
    print(f"{'-' * 60}\nall levels ({args.seconds:.0f} s per stream, real time):")
    print_table(rows, ["workload", "streams", "first_seen_p50_s", "first_seen_p90_s",
                       "final_p50_s", "final_p90_s", "word_final_p50_s", "word_final_p90_s",
                       "finals_missing", "wer", "wer_offline", "lag_max_s", "lag_slope",
                       "mean_batch", "server_cpu_cores", "server_peak_rss_mb"])
    print(f"\nraw model throughput (offline, audio s per wall s by batch, median of "
          f"{raw['rounds']}): "
          f"{ {k: round(v, 1) for k, v in raw['audio_s_per_s_by_batch'].items()} }")
    print(f"capacity = {capacity} streams; efficiency = {capacity} / {raw['best']:.1f} = "
          f"{efficiency:.0%}" if efficiency is not None else "")
    write_json(f"capacity_{args.workload}",
               {"workload": args.workload, "levels": rows, "raw_model": raw,
                "capacity": capacity, "efficiency": efficiency,
                "seconds_per_stream": args.seconds, "lag_series": lag_series},
               args.out)


if __name__ == "__main__":
    main()
