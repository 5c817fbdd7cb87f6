"""Telephone audio: what seed 003's ``mode=phone`` should change, measured.

Every evaldata item with a reference is degraded the way a phone line does it (8 kHz,
300-3400 Hz band, 8-bit mu-law) and transcribed the way a file job does (Silero VAD chunks,
the finals' beam), with and without each candidate setting: lower VAD thresholds (phone
speech scores lower) and a telephone prompt for the decoder. WER of the clean items is shown
beside, so a setting that helps phone audio but hurts clean audio shows.

    python benchmarks/phone_mode.py
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import print_table, write_json
from scipy.signal import butter, resample_poly, sosfilt

from earmark.filejobs.transcriber import chunks_for
from earmark.inference.vad import SileroVad
from earmark.inference.whisper import DecodeOptions, WhisperBackend
from earmark_eval import load_items, read_mono_16k, wer

MU = 255.0
PROMPT = "A recorded telephone call."


def phone_line(audio: np.ndarray) -> np.ndarray:
    """16 kHz audio as a narrow-band phone call would deliver it, back at 16 kHz."""
    x = resample_poly(audio, 1, 2)
    x = sosfilt(butter(4, [300, 3400], btype="band", fs=8000, output="sos"), x)
    x = np.clip(x, -1, 1)
    y = np.round(np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU) * 127) / 127
    x = np.sign(y) * ((1 + MU) ** np.abs(y) - 1) / MU
    return resample_poly(x, 2, 1).astype(np.float32)


def transcribe(backend: WhisperBackend, vad: SileroVad, audio: np.ndarray, threshold: float,
               prompt: str | None) -> str:
    audio = audio[: len(audio) - len(audio) % 512]
    chunks = chunks_for(vad.probs(vad.new_state(), audio), threshold)
    texts = []
    for c in chunks:
        got = backend.transcribe_batch([audio[c.start_sample:c.end_sample]],
                                       [DecodeOptions(5, prompt)])[0]
        texts.append(" ".join(w.text.strip() for w in got.words))
    return " ".join(texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    items = [it for kind in ("short_read", "long", "conversation")
             for it in load_items(kind) if it.reference]
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    backend, vad = WhisperBackend(None, device="cpu"), SileroVad()
    clean = [read_mono_16k(it.path).astype(np.float32) for it in items]
    phone = [phone_line(a) for a in clean]
    refs = [it.reference for it in items]
    rows = []
    for name, threshold, prompt in (("default", 0.5, None), ("vad 0.35", 0.35, None),
                                    ("vad 0.25", 0.25, None), ("phone prompt", 0.5, PROMPT)):
        row = {"setting": name, "items": len(items),
               "words": sum(len(r.split()) for r in refs)}
        for audio_name, audios in (("phone", phone), ("clean", clean)):
            hyps = [transcribe(backend, vad, a, threshold, prompt) for a in audios]
            row[f"wer_{audio_name}"] = round(wer(refs, hyps), 4)
        rows.append(row)
        print_table([row], list(row))
    print("all:")
    print_table(rows, list(rows[0]))
    write_json("phone_mode", {"rows": rows}, args.out)


if __name__ == "__main__":
    main()
