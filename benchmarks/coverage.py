"""Coverage: does every spoken word reach a final, once?

Streams the evaldata through a local server and checks the finals against the references:

- ``gapped``: every short_read item, in manifest order, with 1-2 s of silence after each;
- ``continuous``: the continuous-talk workload (workloads.py: the 90 s reading, then LJ
  items joined with 0.25 s pauses);
- ``voice_agent``: the gapped stream with a ``Finalize`` 200 ms after each item's speech
  ends (the pipecat pattern, benchmarks/voice_agent.py);
- ``webrtc``: the gapped stream as a WAV file sent by an aiortc peer (Opus over RTP,
  ``client_examples/webrtc_file.py``), results on the data channel;
- ``file``: the gapped stream as one WAV file through ``POST /v1/listen`` (the file-job
  path);
- ``nonspeech``: each nonspeech item (music, a bird, room tone) on its own socket: no word
  should come back.

Per workload: the share of reference words that reached a final (aligned, exact words after
normalisation), the share heard at all (exact or misheard as another word: a final stands
for it), the reference words no final stands for (deletions, listed in context), words
finalized twice (the same word over the same audio in two finals),
repeated 4-grams the reference does not have, and words whose audio is silence between
items. Socket workloads run in real time.

    python benchmarks/coverage.py [--workloads gapped,continuous,voice_agent,file,nonspeech]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import urllib.request
import wave
from collections import Counter

import numpy as np
from _common import print_table, write_json
from live_latency import run_stream, start_server
from voice_agent import agent, speech_end
from workloads import Workload, continuous, gapped

from earmark_eval import load_items, normalize, read_mono_16k

PORT = 8768
SR = 16000
SILENCE_MARGIN_S = 0.3  # a word this close to an item's audio is not "in the silence"


def gapped_all() -> Workload:
    """workloads.py's gapped stream, of every short_read item rather than the first ten."""
    return gapped(n_items=len(load_items("short_read")))


def final_words(received: list[tuple[float, dict]]) -> list[list[dict]]:
    """The words of each final Results, in arrival order."""
    return [m["channel"]["alternatives"][0]["words"] for _, m in received
            if m.get("type") == "Results" and m["is_final"]]


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth",
            "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _below_100(n: int) -> str:
    return _ONES[n] if n < 20 else " ".join(
        [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else []))


def _spoken(n: int) -> str:
    """An integer under 10000 as read aloud; 1100-1999 as a year ("fourteen sixty two")."""
    if n < 100:
        return _below_100(n)
    if 1100 <= n < 2000 and n % 100:
        return f"{_below_100(n // 100)} {_below_100(n % 100)}"
    if n < 1000:
        rest = f" {_below_100(n % 100)}" if n % 100 else ""
        return f"{_ONES[n // 100]} hundred{rest}"
    rest = f" {_spoken(n % 1000)}" if n % 1000 else ""
    return f"{_ONES[n // 1000]} thousand{rest}"


def spell_numbers(text: str) -> str:
    """Digits as the references spell them ("1462" -> "fourteen sixty two", "15th" ->
    "fifteenth"): Whisper writes numbers in digits, the LJ references in words, and the
    manifest's normaliser keeps both as they are. Hand-written (30 lines) rather than a
    dependency in the server's lock for one benchmark's scoring."""
    out = []
    for token in text.split():
        m = re.fullmatch(r"(\d{1,4})(st|nd|rd|th)?", token)
        if not m:
            out.append(token)
            continue
        words = _spoken(int(m.group(1))).split()
        if m.group(2):
            last = words[-1]
            words[-1] = _ORDINAL.get(last) or (last[:-1] + "ieth" if last.endswith("y")
                                               else last + "th")
        out.extend(words)
    return " ".join(out)


def alignment(reference: str, words: list[str]) -> dict:
    """Reference words matched exactly by the aligned hypothesis (``equal``), heard as another
    word (``substituted``: the model misheard them, they did reach a final) and never heard
    (``deleted``: no final word stands for them), with the deleted runs in context."""
    import jiwer

    ref = spell_numbers(normalize(reference))
    hyp = spell_numbers(normalize(" ".join(words)))
    n = len(ref.split())
    if not hyp.strip():
        return {"equal": 0, "substituted": 0, "deleted": n, "gaps": [ref]}
    out = jiwer.process_words(ref, hyp)
    tokens = out.references[0]
    counts = {"equal": 0, "substitute": 0, "delete": 0}
    gaps = []
    for c in out.alignments[0]:
        if c.type in counts:
            counts[c.type] += c.ref_end_idx - c.ref_start_idx
        if c.type == "delete":
            before = " ".join(tokens[max(0, c.ref_start_idx - 3):c.ref_start_idx])
            after = " ".join(tokens[c.ref_end_idx:c.ref_end_idx + 3])
            gaps.append(f"{before} [{' '.join(tokens[c.ref_start_idx:c.ref_end_idx])}] {after}")
    return {"equal": counts["equal"], "substituted": counts["substitute"],
            "deleted": counts["delete"], "gaps": gaps}


def twice(finals: list[list[dict]]) -> int:
    """Words of a final that repeat a word of an earlier final over the same audio."""
    seen: list[tuple[str, float, float]] = []
    count = 0
    for words in finals:
        mine = []
        for w in words:
            key = normalize(w["word"])
            if not key:
                continue
            for text, start, end in seen:
                overlap = min(end, w["end"]) - max(start, w["start"])
                if text == key and overlap > 0.5 * max(1e-3, w["end"] - w["start"]):
                    count += 1
                    break
            mine.append((key, w["start"], w["end"]))
        seen.extend(mine)
    return count


def repeated_4grams(reference: str, words: list[str]) -> int:
    """4-grams the finals say more often than the reference does (the excess)."""
    def grams(tokens: list[str]) -> Counter:
        return Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3))

    hyp = grams(normalize(" ".join(words)).split())
    ref = grams(normalize(reference).split())
    return sum(max(0, n - ref.get(g, 0)) for g, n in hyp.items() if n > 1)


def in_silence(finals: list[list[dict]], spans: list[tuple[float, float]]) -> int:
    count = 0
    for words in finals:
        for w in words:
            mid = (w["start"] + w["end"]) / 2
            if not any(a - SILENCE_MARGIN_S <= mid <= b + SILENCE_MARGIN_S for a, b in spans):
                count += 1
    return count


def row(name: str, workload: Workload, finals: list[list[dict]]) -> dict:
    texts = [w["word"] for words in finals for w in words]
    n_ref = len(spell_numbers(normalize(workload.reference)).split())
    aligned = alignment(workload.reference, texts)
    return {"workload": name, "audio_s": round(len(workload.audio) / SR, 1),
            "reference_words": n_ref, "final_words": len(texts),
            "reached_final": round(aligned["equal"] / n_ref, 4),
            "heard": round((aligned["equal"] + aligned["substituted"]) / n_ref, 4),
            "never_heard": aligned["deleted"], "missing_runs": aligned["gaps"],
            "finalized_twice": twice(finals),
            "repeated_4grams": repeated_4grams(workload.reference, texts),
            "words_in_silence": in_silence(finals, workload.spans)}


COLUMNS = ["workload", "audio_s", "reference_words", "final_words", "reached_final", "heard",
           "never_heard", "finalized_twice", "repeated_4grams", "words_in_silence"]


def show(r: dict) -> None:
    print_table([r], [c for c in COLUMNS if c in r])
    for gap in r.get("missing_runs", []):
        print(f"  never heard: {gap}")
    if r.get("text"):
        print(f"  said: {r['text']}")


def wav(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


async def webrtc_finals(http: str, audio: np.ndarray) -> list[list[dict]]:
    """The finals of ``audio`` sent by an aiortc peer, as the client example sends a file."""
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client_examples"))
    import webrtc_file

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        f.write(wav(audio))
        f.flush()
        messages = await webrtc_file.stream_file(http, f.name)
    return [m["channel"]["alternatives"][0]["words"] for m in messages
            if m.get("type") == "Results" and m["is_final"]]


def file_finals(http: str, audio: np.ndarray) -> list[list[dict]]:
    request = urllib.request.Request(f"{http}/v1/listen?utterances=true", data=wav(audio),
                                     headers={"Content-Type": "audio/wav"})
    with urllib.request.urlopen(request, timeout=600) as r:
        body = json.loads(r.read())
    return [u["words"] for u in body["results"].get("utterances", [])]


async def run(names: list[str], ws: str, http: str) -> list[dict]:
    rows = []
    if {"gapped", "voice_agent", "file", "webrtc"} & set(names):
        gapped = gapped_all()
    if "gapped" in names:
        received = await run_stream(ws, gapped.audio, 500, tagging=False)
        rows.append(row("gapped", gapped, final_words(received)))
        show(rows[-1])
    if "continuous" in names:
        talk = continuous()
        received = await run_stream(ws, talk.audio, 500, tagging=False)
        rows.append(row("continuous", talk, final_words(received)))
        show(rows[-1])
    if "voice_agent" in names:
        ends = [speech_end(gapped.audio, a, b) for a, b in gapped.spans]
        received, _ = await agent(ws, gapped.audio, ends,
                                  "interim_results=true&smart_format=true&punctuate=true", 0.2)
        rows.append(row("voice_agent", gapped, final_words(received)))
        show(rows[-1])
    if "webrtc" in names:
        rows.append(row("webrtc", gapped, await webrtc_finals(http, gapped.audio)))
        show(rows[-1])
    if "file" in names:
        finals = await asyncio.to_thread(file_finals, http, gapped.audio)
        rows.append(row("file", gapped, finals))
        show(rows[-1])
    if "nonspeech" in names:
        for it in load_items("nonspeech"):
            audio = np.concatenate([read_mono_16k(it.path).astype(np.float32),
                                    np.zeros(SR, np.float32)])
            finals = final_words(await run_stream(ws, audio, 500, tagging=False))
            said = [w["word"] for words in finals for w in words]
            rows.append({"workload": f"nonspeech {it.id}", "audio_s": round(len(audio) / SR, 1),
                         "reference_words": 0, "final_words": len(said),
                         "reached_final": None, "finalized_twice": twice(finals),
                         "repeated_4grams": 0, "words_in_silence": len(said),
                         "text": " ".join(said)})
            show(rows[-1])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads",
                    default="gapped,continuous,voice_agent,webrtc,file,nonspeech")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    names = args.workloads.split(",")
    proc = start_server(PORT, {"EARMARK_LISTEN_DEFAULTS": "tagging=false"})
    try:
        rows = asyncio.run(run(names, f"ws://127.0.0.1:{PORT}", f"http://127.0.0.1:{PORT}"))
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"{'-' * 60}\nall:")
    print_table(rows, COLUMNS)
    write_json("coverage", {"rows": rows}, args.out)


if __name__ == "__main__":
    main()
