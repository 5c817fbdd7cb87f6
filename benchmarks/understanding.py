"""Text options: PII redaction quality on the labelled set, and the time each option adds to
a final (the text worker's time per final, model loaded, one final at a time).

- redaction recall per kind (email, phone, card, name) on ``data/pii_dev.jsonl`` (46
  transcript-style sentences: digits written as digits, spaced digits and digit words) and
  the false-alarm rate on its sentences without PII (targets: recall >= 0.9 for emails,
  phones, cards)
- p50 / p90 ms per final for each option and for all of them, over the reference texts of
  the evaldata short reads (target: < 100 ms p50)

    python benchmarks/understanding.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import print_table, write_json

from earmark.core.text_options import TextOptions, redact_kinds
from earmark.inference.understanding import TextModels
from earmark_eval import load_items
from earmark_eval.pii import score, words_of

OPTIONS = {
    "replace": TextOptions(replace=(("colour", "color"),)),
    "profanity": TextOptions(profanity=True),
    "redact (patterns)": TextOptions(redact=redact_kinds(["pci", "ssn"])),
    "redact (pii, with NER)": TextOptions(redact=redact_kinds(["pii"])),
    "sentiment": TextOptions(sentiment=True),
    "entities": TextOptions(entities=True),
}
OPTIONS["all"] = TextOptions(replace=(("colour", "color"),), profanity=True,
                             redact=redact_kinds(["pii"]), sentiment=True, entities=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    models = TextModels()
    t0 = time.perf_counter()
    models.process(words_of("warm up London"), OPTIONS["all"])
    load_s = time.perf_counter() - t0
    pii = score(lambda w: models.process(w, TextOptions(redact=redact_kinds(["pii"]))).words)
    pii_rows = [{"kind": k, **{m: round(v, 3) for m, v in vals.items()}}
                for k, vals in pii.items()]
    texts = [i.reference for i in load_items("short_read") if i.reference] or \
        [line for line in ["The quick brown fox jumps over the lazy dog near London."] * 20]
    rows = []
    for name, options in OPTIONS.items():
        times = []
        for text in texts:
            words = words_of(text)
            t = time.perf_counter()
            models.process(words, options)
            times.append((time.perf_counter() - t) * 1000)
        rows.append({"option": name, "finals": len(times),
                     "p50_ms": float(np.percentile(times, 50)),
                     "p90_ms": float(np.percentile(times, 90))})
    print(f"models loaded on first use in {load_s:.1f} s\n\nredaction on the labelled set:")
    print_table(pii_rows, ["kind", "recall", "false_alarm_rate", "n"])
    print("\ntime added per final (text worker, one final at a time):")
    print_table(rows, list(rows[0]))
    write_json("understanding", {"load_s": load_s, "pii": pii, "latency": rows}, args.out)


if __name__ == "__main__":
    main()
