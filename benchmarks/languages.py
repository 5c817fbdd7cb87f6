"""Language detection and per-language accuracy with the multilingual Whisper base from PyPI.

Every evaldata ``language`` item (and the short English reads) is decoded with
``language="auto"``: the detected language is compared with the manifest's, and the text with
the reference (WER; character error rate for Chinese and Japanese). Target: detection
accuracy >= 90 %.

    python benchmarks/languages.py [--model base]
"""

from __future__ import annotations

import argparse
import time

import jiwer
from _common import print_table, write_json

from earmark.inference.whisper import DecodeOptions, WhisperBackend
from earmark_eval import load_items, normalize, read_mono_16k

UNSPACED = {"zh", "ja"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="base")
    ap.add_argument("--english", type=int, default=8, help="short English reads to add")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    items = load_items("language") + load_items("short_read")[: args.english]
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    backend = WhisperBackend(args.model)
    rows = []
    for item in items:
        audio = read_mono_16k(item.path)
        t = time.perf_counter()
        got = backend.transcribe(audio, DecodeOptions(beam_size=5, language="auto"))
        ms = (time.perf_counter() - t) * 1000
        joiner = "" if got.language in UNSPACED else " "
        text = joiner.join(w.text.strip() for w in got.words)
        ref = item.reference or ""
        if item.language in UNSPACED:
            err = jiwer.cer(ref, text) if ref else float("nan")
        else:
            err = jiwer.wer(normalize(ref), normalize(text)) if ref else float("nan")
        rows.append({"item": item.id, "language": item.language, "detected": got.language,
                     "ok": got.language == item.language, "error_rate": round(err, 3),
                     "ms": round(ms)})
    accuracy = sum(r["ok"] for r in rows) / len(rows)
    print(f"model {args.model}: detection accuracy {accuracy:.0%} over {len(rows)} items "
          "(error_rate: WER, CER for zh/ja)")
    print_table(rows, list(rows[0]))
    write_json("languages", {"model": args.model, "accuracy": accuracy, "items": rows}, args.out)


if __name__ == "__main__":
    main()
