"""The live partial/final policy replayed on a simulated clock, one stream, real model.

Audio is fed to the pure core (``StreamSession``) as a real-time client would send it, with
Silero VAD and tiny.en on this machine. A simulated clock stands in for the wall clock: audio
time advances with each 96 ms step, and every model call occupies one model worker for as
long as it really took here, finals before partials. This isolates the policy from the socket
and the scheduler, runs faster than real time, and gives per-word figures:

With ``--fixed-cost FINAL,PARTIAL`` every final decode occupies the worker for FINAL seconds
and every interim for PARTIAL seconds instead of its measured time, so two runs of the same
settings give the same figures (the model's output is deterministic on CPU; its timing is
not, and on this VM the spread was about 0.6 WER points between runs). Use it to compare
policy settings; use the measured clock for latency figures.

- final latency per word: when the first final holding the word is sent, minus the word's
  end in the audio;
- first-seen latency per word: when the word first shows up in any result;
- WER of the finals, and offline WER of the same model (faster-whisper, beam 5) on the same
  stream.

    python benchmarks/policy_replay.py [--workload continuous|gapped|both] [--endpointing 500]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import heapq
import json
import time

import numpy as np
from _common import RESULTS_DIR, print_table, write_json
from workloads import NAMES, Workload, build

from earmark.core import SAMPLE_RATE, WINDOW_SAMPLES
from earmark.core.events import Priority, Transcript
from earmark.core.session import StreamSession
from earmark.dialects.deepgram import LiveOptions
from earmark.inference.vad import SileroVad
from earmark.inference.whisper import DecodeOptions, WhisperBackend, WindowPolicy
from earmark.live.factory import LivePolicy, session_config
from earmark_eval import normalize, wer

STEP = 3 * WINDOW_SAMPLES  # 96 ms of audio per client frame


def replay(workload: Workload, backend: WhisperBackend, vad: SileroVad, *,
           endpointing: int | None, interim: bool, beam: int = 5,
           partial_beam: int = 1, overrides: dict | None = None,
           final_window: WindowPolicy | None = None,
           partial_window: WindowPolicy | None = None,
           fixed_cost: tuple[float, float] | None = None) -> dict:
    config = session_config(LiveOptions(interim_results=interim, endpointing_ms=endpointing).spec(),
                            LivePolicy(music_threshold=0.007))
    config = dataclasses.replace(config, **(overrides or {}))
    session = StreamSession(config)
    state = vad.new_state()
    audio = workload.audio[: len(workload.audio) - len(workload.audio) % STEP]
    queue: list[tuple[int, int, object]] = []  # (priority, id, request)
    cancelled: set[int] = set()
    busy_until = 0.0
    in_flight: tuple[float, int, object] | None = None  # (ready at, id, recognition)
    events: list[tuple[float, object]] = []
    model_s = 0.0
    final_model_s = 0.0
    calls = {"final": 0, "partial": 0}
    partial_audio_s: list[float] = []  # how much audio each interim decode re-reads

    def pump(now: float) -> None:
        for r in session.requests_to_send():
            heapq.heappush(queue, (0 if r.priority is not Priority.PARTIAL else 1,
                                   r.request_id, r))
        cancelled.update(session.requests_to_cancel())
        events.extend((now, e) for e in session.events_to_send())

    def start_next(now: float) -> None:
        nonlocal busy_until, in_flight, model_s, final_model_s
        while queue and in_flight is None:
            _, rid, req = heapq.heappop(queue)
            if rid in cancelled:
                continue
            t0 = time.perf_counter()
            partial = req.priority is Priority.PARTIAL
            options = DecodeOptions(partial_beam if partial else beam, req.hotwords,
                                    req.language, req.previous_text)
            rec = backend.transcribe_batch([req.audio], [options],
                                           window=partial_window if partial else final_window)[0]
            took = time.perf_counter() - t0
            if fixed_cost is not None:
                took = fixed_cost[1] if partial else fixed_cost[0]
            model_s += took
            calls["partial" if partial else "final"] += 1
            if partial:
                partial_audio_s.append(len(req.audio) / SAMPLE_RATE)
            final_model_s += 0.0 if partial else took
            busy_until = max(now, busy_until) + took
            in_flight = (busy_until, rid, rec)

    def deliver_until(t: float) -> None:
        nonlocal in_flight
        while in_flight is not None and in_flight[0] <= t:
            ready, rid, rec = in_flight
            in_flight = None
            session.receive_result(rid, rec)
            pump(ready)
            start_next(ready)

    for start in range(0, len(audio), STEP):
        now = (start + STEP) / SAMPLE_RATE  # the frame has arrived once its audio was played
        deliver_until(now)
        chunk = audio[start : start + STEP]
        session.receive_audio(chunk, vad.probs(state, chunk))
        pump(now)
        start_next(now)
    end = len(audio) / SAMPLE_RATE
    session.receive_close()
    pump(end)
    start_next(end)
    while in_flight is not None:
        deliver_until(in_flight[0])
    row = measure(workload, events, model_s, final_model_s)
    partial_s = model_s - final_model_s
    return {**row, "final_calls": calls["final"], "partial_calls": calls["partial"],
            "final_call_s": final_model_s / max(1, calls["final"]),
            "partial_call_s": partial_s / max(1, calls["partial"]),
            "partial_audio_p90_s": float(np.percentile(partial_audio_s, 90))
            if partial_audio_s else None,
            "partial_audio_max_s": max(partial_audio_s, default=None)}


def measure(workload: Workload, events, model_s: float, final_model_s: float) -> dict:
    results = [(t, e) for t, e in events if isinstance(e, Transcript)]
    finals = [(t, e) for t, e in results if e.is_final]
    final_lat, first_seen = [], []
    for t, f in finals:
        for w in f.words:
            end = w.end_sample / SAMPLE_RATE
            final_lat.append(t - end)
            key = normalize(w.text)
            for t2, r in results:
                if any(normalize(x.text) == key and abs(x.start_sample - w.start_sample) < 0.6
                       * SAMPLE_RATE for x in r.words):
                    first_seen.append(t2 - end)
                    break
    text = " ".join(f.text for _, f in finals if f.text)
    # Cadence: seconds of audio between two finals that carry words, during talk.
    word_finals = [f for _, f in finals if f.words]
    gaps = np.diff([f.end_sample / SAMPLE_RATE for f in word_finals]) if word_finals else []
    return {
        "final_p50_s": _p(final_lat, 50), "final_p90_s": _p(final_lat, 90),
        "first_seen_p50_s": _p(first_seen, 50), "first_seen_p90_s": _p(first_seen, 90),
        "finals": len(word_finals), "speech_finals": sum(f.speech_final for f in word_finals),
        "final_every_s": float(np.median(gaps)) if len(gaps) else None,
        "words": len(final_lat),
        "wer_finals": wer([workload.reference], [text]),
        "model_s_per_audio_s": model_s / (len(workload.audio) / SAMPLE_RATE),
        "final_model_s_per_audio_s": final_model_s / (len(workload.audio) / SAMPLE_RATE),
        "text": text,
    }


def offline_wer(workload: Workload) -> float:
    """faster-whisper's own transcribe of the whole stream (cached: it never changes)."""
    from faster_whisper import WhisperModel

    from earmark.inference.whisper import resolve_model

    key = hashlib.sha1(workload.audio.tobytes()).hexdigest()
    cache = RESULTS_DIR / "offline_wer_cache.json"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if key not in known:
        fw = WhisperModel(resolve_model(None), device="cpu", compute_type="int8")
        segments, _ = fw.transcribe(workload.audio, beam_size=5, language="en")
        known[key] = wer([workload.reference], [" ".join(s.text for s in segments)])
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=1))
    return known[key]


def _p(values, q) -> float | None:  # noqa: ANN001
    return float(np.percentile(values, q)) if len(values) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=[*NAMES, "both"], default="both")
    ap.add_argument("--endpointing", default="500",
                    help="comma-separated: milliseconds, or false (default 500)")
    ap.add_argument("--interim", choices=["true", "false"], default="true")
    ap.add_argument("--show-text", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a SessionConfig field (samples), e.g. pause_cut_samples=1024")
    ap.add_argument("--min-window", type=float, default=10.0,
                    help="finals' shortest decode window in s (the server's min_window_s)")
    ap.add_argument("--partial-min-window", type=float, default=5.0,
                    help="interims' shortest decode window in s (partial_min_window_s)")
    ap.add_argument("--partial-beam", type=int, default=1,
                    help="interims' beam size (the server's partial_beam_size)")
    ap.add_argument("--bucket", type=float, default=5.0,
                    help="decode windows are rounded up to this (s; window_bucket_s and "
                    "partial_window_bucket_s)")
    ap.add_argument("--fixed-cost", default=None, metavar="FINAL,PARTIAL",
                    help="seconds each final / interim decode occupies the simulated worker "
                    "(default: the measured time), for run-to-run identical comparisons")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    names = NAMES if args.workload == "both" else (args.workload,)
    overrides = {k: (None if v == "none" else int(v))
                 for k, v in (o.split("=", 1) for o in args.set)}
    fixed_cost = (tuple(float(x) for x in args.fixed_cost.split(","))
                  if args.fixed_cost else None)
    backend = WhisperBackend(None, device="cpu")
    vad = SileroVad()
    rows = []
    for name in names:
        workload = build(name)
        off = offline_wer(workload)
        for ep in args.endpointing.split(","):
            endpointing = None if ep.strip() == "false" else int(ep)
            row = {"workload": name, "audio_s": round(len(workload.audio) / SAMPLE_RATE, 1),
                   "endpointing": ep, "interim": args.interim, "min_window_s": args.min_window,
                   "bucket_s": args.bucket, "partial_beam": args.partial_beam,
                   "fixed_cost": args.fixed_cost, "set": args.set,
                   **replay(workload, backend, vad, endpointing=endpointing,
                            interim=args.interim == "true", overrides=overrides,
                            partial_beam=args.partial_beam, fixed_cost=fixed_cost,
                            final_window=WindowPolicy(args.bucket, min_window_s=args.min_window),
                            partial_window=WindowPolicy(args.bucket,
                                                        min_window_s=args.partial_min_window)),
                   "wer_offline": off}
            if args.show_text:
                print(f"[{name} {ep}] {row['text']}\n")
            rows.append(row)
    cols = ["workload", "audio_s", "endpointing", "interim", "min_window_s", "finals",
            "speech_finals",
            "final_every_s", "words", "final_p50_s", "final_p90_s", "first_seen_p50_s",
            "first_seen_p90_s", "wer_finals", "wer_offline", "model_s_per_audio_s",
            "final_model_s_per_audio_s", "final_call_s", "partial_call_s", "partial_audio_p90_s",
            "partial_audio_max_s"]
    print("one stream, simulated clock, tiny.en on this machine's CPU")
    print_table(rows, cols)
    write_json("policy_replay", {"rows": rows}, args.out)


if __name__ == "__main__":
    main()
