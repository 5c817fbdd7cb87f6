"""Custom vocabulary (``keyterm`` / ``customVocabulary``): does it help the words it names,
and does it cost the rest?

For each evaldata read with a reference, the target words are its long or capitalised words
(7+ letters or proper nouns). Each clip is decoded three ways: no vocabulary, its own target
words as vocabulary, and an unrelated vocabulary (another clip's targets). Reported: recall of
the target words and WER for each.

    python benchmarks/vocabulary.py [--model bundled]
"""

from __future__ import annotations

import argparse
import re

from _common import print_table, write_json

from earmark.inference.whisper import DecodeOptions, WhisperBackend
from earmark_eval import load_items, normalize, read_mono_16k, wer


def targets(reference: str) -> list[str]:
    words = re.findall(r"[A-Za-z][A-Za-z']+", reference)
    picked = [w for i, w in enumerate(words) if len(w) >= 7 or (i and w[0].isupper())]
    return list(dict.fromkeys(w.lower() for w in picked))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    items = [i for i in load_items("short_read") + load_items("long") if i.reference]
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    backend = WhisperBackend(args.model)
    modes = {"none": [], "own words": [], "unrelated words": []}
    refs: list[str] = []
    found = {m: 0 for m in modes}
    total = 0
    for k, item in enumerate(items):
        audio = read_mono_16k(item.path)[: 28 * 16000]
        ref = item.reference or ""
        if item.kind == "long":
            continue  # over one decode window; the short reads carry the measurement
        own = targets(ref)
        other = targets(items[(k + 1) % len(items)].reference or "")
        refs.append(ref)
        total += len(own)
        for mode, vocab in (("none", []), ("own words", own), ("unrelated words", other)):
            hot = ", ".join(vocab) or None
            got = backend.transcribe(audio, DecodeOptions(beam_size=5, hotwords=hot))
            text = " ".join(w.text.strip() for w in got.words)
            modes[mode].append(text)
            said = set(normalize(text).split())
            found[mode] += sum(1 for w in own if normalize(w) in said)
    rows = [{"vocabulary": m, "target_recall": round(found[m] / max(1, total), 3),
             "wer": round(wer(refs, hyps), 4), "clips": len(hyps), "targets": total}
            for m, hyps in modes.items()]
    print_table(rows, list(rows[0]))
    write_json("vocabulary", {"rows": rows}, args.out)


if __name__ == "__main__":
    main()
