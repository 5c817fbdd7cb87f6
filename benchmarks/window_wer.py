"""WER and decode time per padded window length (the data behind ``window_bucket_s``).

Decodes every short_read evaldata item offline with Earmark's Whisper backend at several
window settings, and with faster-whisper's own 30 s ``transcribe()`` as the reference.

    python benchmarks/window_wer.py [--model X] [--device cpu] [--out results.json]
"""

from __future__ import annotations

import argparse
import time

from _common import print_table, write_json

from earmark.inference.whisper import DecodeOptions, WhisperBackend
from earmark_eval import load_items, read_mono_16k, wer

SETTINGS = [  # (bucket s, minimum trailing pad s, minimum window s)
    (30.0, 0.0, 0.0),
    (10.0, 1.0, 0.0),
    (5.0, 1.0, 0.0),
    (2.5, 1.0, 0.0),
    (5.0, 1.0, 10.0),
    (5.0, 2.0, 10.0),
    (5.0, 1.0, 15.0),
    (5.0, 1.0, 20.0),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    items = [it for it in load_items("short_read") if it.reference]
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    audios = [read_mono_16k(it.path) for it in items]
    refs = [it.reference or "" for it in items]
    backend = WhisperBackend(args.model, device=args.device)
    total_audio = sum(len(a) for a in audios) / 16000
    rows = []

    from faster_whisper import WhisperModel  # the offline reference

    fw = backend._fw
    assert isinstance(fw, WhisperModel)
    for beam in (5, 1):
        t0 = time.perf_counter()
        hyps = []
        for a in audios:
            segs, _ = fw.transcribe(a, beam_size=beam, language=backend.language,
                                    condition_on_previous_text=False)
            hyps.append(" ".join(s.text for s in segs))
        dt = time.perf_counter() - t0
        rows.append({"decoder": "faster-whisper transcribe()", "bucket_s": 30.0, "pad_s": None,
                     "beam": beam, "wer": wer(refs, hyps), "rtf": dt / total_audio})
    for bucket, pad, min_window in SETTINGS:
        backend.window_bucket_s, backend.min_pad_s = bucket, pad
        backend.min_window_s = min_window
        for beam in (5, 1):
            t0 = time.perf_counter()
            hyps = [" ".join(w.text for w in backend.transcribe(a, DecodeOptions(beam)).words)
                    for a in audios]
            dt = time.perf_counter() - t0
            rows.append({"decoder": "earmark", "bucket_s": bucket, "pad_s": pad,
                         "min_window_s": min_window, "beam": beam,
                         "wer": wer(refs, hyps), "rtf": dt / total_audio})
    print(f"{len(items)} short_read items, {total_audio:.1f} s of audio, model {backend.name} "
          f"on {backend.device}/{backend.compute_type}")
    print_table(rows, ["decoder", "bucket_s", "pad_s", "min_window_s", "beam", "wer", "rtf"])
    write_json("window_wer", {"model": backend.name, "device": backend.device,
                              "compute_type": backend.compute_type, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
