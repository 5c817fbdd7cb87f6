"""Redacted audio: is any redacted PII still audible?

Every sentence of ``data/pii_dev.jsonl`` that holds PII is spoken by espeak-ng, transcribed by
Whisper (word times), redacted (``redact=pii``), and its audio beeped where the redacted words
were (``core/redacted_audio.py``, the stream jobs' ``redact_pii_audio``). The beeped audio is
transcribed again and each PII value's tokens are looked for in what is heard. Reports PII
values redacted in the text (no word of a name, no three-digit run of a number left in the
redacted text), those of them any part of which is heard in the beeped audio (target: 0),
and the share of the other words still heard (how much the padding costs). Values the text
left unredacted are a text-redaction miss (``benchmarks/understanding.py``), not counted here.
Needs espeak-ng (``make setup`` installs it).

    python benchmarks/redacted_audio.py
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from _common import print_table, write_json

from earmark.core.redacted_audio import beep_out, is_redacted, redacted_spans
from earmark.core.text_options import TextOptions, redact_kinds
from earmark.inference.understanding import TextModels
from earmark.inference.whisper import DecodeOptions, WhisperBackend
from earmark_eval.pii import PII_SET

_TOKEN = re.compile(r"[a-z0-9]+")
_DIGITS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
           "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}


def speak(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text],
                       check=True, capture_output=True)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    import soxr

    return np.concatenate([np.zeros(8000, np.float32), soxr.resample(pcm, rate, 16000),
                           np.zeros(8000, np.float32)]).astype(np.float32)


def tokens(text: str) -> list[str]:
    """Lower-case tokens with digit words as digits and digit runs split (5551234 -> 5 5 5...)."""
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        tok = _DIGITS.get(tok, tok)
        out.extend(tok if tok.isdigit() else [tok])
    return out


def _found(value: list[str], said: list[str]) -> bool:
    """Any part of the value in ``said``: a 3-digit run of a number, or a word of a name."""
    digits = [t for t in value if t.isdigit()]
    if digits:
        run = "".join(t for t in said if t.isdigit())
        return any("".join(digits[i:i + 3]) in run for i in range(max(1, len(digits) - 2)))
    return any(t in said for t in value if len(t) > 2 and t not in ("com", "dot", "at"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is missing (make setup installs it)")
    model, text = WhisperBackend(), TextModels()
    options = TextOptions(redact=redact_kinds(["pii"]))
    items = [json.loads(line) for line in PII_SET.read_text().splitlines()]
    rows: dict[str, dict[str, int]] = {}
    kept = other = 0
    for item in items:
        if not item["spans"]:
            continue
        audio = speak(item["text"])
        words = model.transcribe(audio, DecodeOptions(beam_size=5)).words
        redacted = text.process(words, options).words
        beeped = beep_out(audio, 0, redacted_spans(redacted))
        heard = tokens(" ".join(w.text for w in model.transcribe(
            beeped, DecodeOptions(beam_size=5)).words))
        said_plain = tokens(" ".join(w.text for w in redacted if not is_redacted(w)))
        other += len(said_plain)
        kept += sum(1 for t in said_plain if t in heard)
        plain = tokens(" ".join(w.text for w in redacted if not is_redacted(w)))
        some_redacted = any(is_redacted(w) for w in redacted)
        for span in item["spans"]:
            value = tokens(item["text"][span["start"]:span["end"]])
            row = rows.setdefault(span["kind"], {"values": 0, "redacted in text": 0,
                                                 "heard after beeping": 0})
            row["values"] += 1
            if not some_redacted or _found(value, plain):
                continue  # the text shows it: a text-redaction miss, not this benchmark's
            row["redacted in text"] += 1
            row["heard after beeping"] += int(_found(value, heard))
    table = [{"kind": k, **v} for k, v in sorted(rows.items())]
    table.append({"kind": "other words still heard", "values": other,
                  "redacted in text": "", "heard after beeping": f"{kept / max(1, other):.2f}"})
    print_table(table, ["kind", "values", "redacted in text", "heard after beeping"])
    write_json("redacted_audio", {"rows": table}, args.out)


if __name__ == "__main__":
    main()
