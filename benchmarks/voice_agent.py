"""Voice agents: how soon after the user stops talking is the turn's transcript final?

Each agent streams turns in real time over the Deepgram socket: short_read utterances from
the evaldata with 1-2 s of silence after each (a user talking to a bot), a different order per
agent. Three client patterns, as the frameworks behave by default:

- ``pipecat``: ``DeepgramSTTService``'s options (interim results, smart_format, punctuate,
  profanity_filter, Deepgram's default endpointing), and ``Finalize`` 200 ms after the speech
  ends (its Silero VAD's ``stop_secs``). Latency: end of speech to the ``from_finalize``
  Results. Every Finalize must be answered.
- ``livekit``: the LiveKit plugin's options (``endpointing=25``, ``vad_events``,
  ``filler_words``, ``no_delay``, punctuate), no Finalize. Latency: end of speech to the
  first final that holds the turn's last word.
- ``endpointing300``: the reference, ``endpointing=300``, no Finalize, same latency rule.

End of speech is the last 20 ms frame of the utterance above -40 dBFS. Per pattern and
number of agents: latency p50/p90, Finalize answers, WER of the finals against the
references, and the share of reference words that reached a final.

    python benchmarks/voice_agent.py [--agents 1,8] [--seconds 45] [--patterns all]
                                     [--server-env EARMARK_FINALIZE_BEAM_SIZE=1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np
from _common import print_table, write_json
from capacity import sessions
from live_latency import CHUNK_S, start_server

from earmark_eval import normalize, wer

PORT = 8767
PATTERNS = {
    "pipecat": ("interim_results=true&smart_format=true&punctuate=true&profanity_filter=true"
                "&model=nova-3-general", 0.2),
    "livekit": ("interim_results=true&punctuate=true&smart_format=false&no_delay=true"
                "&endpointing=25&filler_words=true&vad_events=true&model=nova-3", None),
    "endpointing300": ("interim_results=true&punctuate=true&endpointing=300", None),
}


def speech_end(audio: np.ndarray, start_s: float, end_s: float) -> float:
    """Seconds: the end of the last 20 ms frame above -40 dBFS inside the span."""
    frame = 320
    a, b = int(start_s * 16000), int(end_s * 16000)
    piece = audio[a:b]
    n = len(piece) // frame
    rms = np.sqrt(np.mean(piece[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(rms) > -40)[0]
    return (a + (loud[-1] + 1) * frame) / 16000 if len(loud) else end_s


async def agent(url: str, audio: np.ndarray, ends: list[float], query: str,
                finalize_after: float | None, chunk_s: float = CHUNK_S
                ) -> tuple[list[tuple[float, dict]], list[float]]:
    """Streams ``audio`` in real time; returns (arrival time, message) and the wall times
    (from the stream's start) at which each Finalize was sent."""
    import websockets

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    step = int(16000 * chunk_s) * 2
    received: list[tuple[float, dict]] = []
    finalized: list[float] = []
    async with websockets.connect(f"{url}/v1/listen?encoding=linear16&sample_rate=16000&"
                                  + query, max_size=None) as ws:
        t0 = time.monotonic()

        async def send() -> None:
            pending = [e + finalize_after for e in ends] if finalize_after is not None else []
            for i in range(0, len(pcm), step):
                due = t0 + (i // 2) / 16000
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await ws.send(pcm[i : i + step])
                # The client's VAD fires once it has heard stop_secs of silence: the audio up
                # to end + stop_secs has been sent, which is this frame's end.
                sent_to = (i // 2) / 16000 + chunk_s
                while pending and pending[0] <= sent_to:
                    pending.pop(0)
                    finalized.append(time.monotonic() - t0)
                    await ws.send(json.dumps({"type": "Finalize"}))
            await ws.send(json.dumps({"type": "CloseStream"}))

        sender = asyncio.create_task(send())
        async for raw in ws:
            received.append((time.monotonic() - t0, json.loads(raw)))
        await sender
    return received, finalized


def turn_latencies(received: list[tuple[float, dict]], audio_ends: list[float],
                   wall_ends: list[float], by_finalize: bool) -> tuple[list[float], int]:
    """Per turn: seconds from the end of speech (the wall time its last audio was sent) to
    its final; and how many ``from_finalize`` answers came."""
    finals = [(t, m) for t, m in received if m.get("type") == "Results" and m["is_final"]]
    answers = [t for t, m in finals if m.get("from_finalize")]
    out = []
    if by_finalize:
        # Answers come in order, one per Finalize; the k-th answers the k-th turn.
        for end, answered in zip(wall_ends, answers, strict=False):
            out.append(answered - end)
        return out, len(answers)
    for audio_end, wall_end in zip(audio_ends, wall_ends, strict=True):
        # the first final holding a word that ends in the turn's last 0.5 s
        hit = next((t for t, m in finals
                    if any(audio_end - 0.5 <= w["end"] <= audio_end + 0.5
                           for w in m["channel"]["alternatives"][0]["words"])), None)
        if hit is not None:
            out.append(hit - wall_end)
    return out, len(answers)


def final_text(received: list[tuple[float, dict]]) -> str:
    return " ".join(m["channel"]["alternatives"][0]["transcript"] for _, m in received
                    if m.get("type") == "Results" and m["is_final"]
                    and m["channel"]["alternatives"][0]["transcript"])


def coverage(reference: str, text: str) -> float:
    """Share of reference words found in the finals (bag of words, each used once)."""
    said = normalize(text).split()
    pool: dict[str, int] = {}
    for w in said:
        pool[w] = pool.get(w, 0) + 1
    ref = normalize(reference).split()
    hit = 0
    for w in ref:
        if pool.get(w, 0):
            pool[w] -= 1
            hit += 1
    return hit / len(ref) if ref else 1.0


async def level(url: str, n: int, seconds: float, pattern: str,
                chunk_s: float = CHUNK_S) -> dict:
    query, finalize_after = PATTERNS[pattern]
    streams = sessions(n, seconds, "gapped")
    ends = [[speech_end(audio, a, b) for a, b in spans] for audio, spans, _ in streams]
    runs = await asyncio.gather(*(agent(url, audio, e, query, finalize_after, chunk_s)
                                  for (audio, _, _), e in zip(streams, ends, strict=True)))
    lat: list[float] = []
    answered = sent = 0
    texts, refs, covered = [], [], []
    for (received, finalized), e, (_, _, ref) in zip(runs, ends, streams, strict=True):
        # speech end in wall time: frames go out at their start time, chunk_s each
        wall_ends = [np.ceil(x / chunk_s - 1e-9) * chunk_s - chunk_s for x in e]
        got, n_answers = turn_latencies(received, e, wall_ends,
                                        by_finalize=finalize_after is not None)
        lat += got
        answered += n_answers
        sent += len(finalized)
        text = final_text(received)
        texts.append(text)
        refs.append(ref)
        covered.append(coverage(ref, text))
    return {
        "pattern": pattern, "agents": n, "chunk_ms": round(chunk_s * 1000),
        "turns": sum(len(e) for e in ends),
        "latency_p50_s": float(np.percentile(lat, 50)) if lat else None,
        "latency_p90_s": float(np.percentile(lat, 90)) if lat else None,
        "finalize_sent": sent, "finalize_answered": answered,
        "wer": wer(refs, texts), "words_final": float(np.mean(covered)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", default="1,8")
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--patterns", default="all", help="comma-separated, or all: "
                    + ", ".join(PATTERNS))
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="a server setting, e.g. EARMARK_FINALIZE_BEAM_SIZE=1 (repeatable)")
    ap.add_argument("--chunk-ms", type=int, default=round(CHUNK_S * 1000),
                    help="audio per frame the agents send (pipecat's transports: 20)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    patterns = list(PATTERNS) if args.patterns == "all" else args.patterns.split(",")
    # Framework users turn Earmark's Tags off server-wide (docs/protocol.md).
    env = {"EARMARK_LISTEN_DEFAULTS": "tagging=false", "EARMARK_ADMIT_BY_CAPACITY": "false",
           **dict(item.split("=", 1) for item in args.server_env)}
    proc = start_server(PORT, env)
    rows = []
    try:
        for n in (int(x) for x in args.agents.split(",")):
            for pattern in patterns:
                row = asyncio.run(level(f"ws://127.0.0.1:{PORT}", n, args.seconds, pattern,
                                        args.chunk_ms / 1000))
                rows.append(row)
                print_table([row], list(row))
                print()
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"{'-' * 60}\nall ({args.seconds:.0f} s of turns per agent, real time):")
    print_table(rows, list(rows[0]))
    write_json("voice_agent", {"levels": rows, "seconds_per_agent": args.seconds,
                               "server_env": env}, args.out)


if __name__ == "__main__":
    main()
