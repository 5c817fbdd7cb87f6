"""Sung lyrics and music against speech: the music-note gate (core/music.py) on evaldata.

Every evaldata item runs through the live core (Silero VAD, partial/final policy, tiny.en)
with interims on and off. Model answers are cached, so each threshold replays the same
decodes. Per threshold it reports the speech finals lost (must be 0: no speech dropped) and
the words left from nonspeech items (the target is 0).

    python benchmarks/music.py [--thresholds 0.003,0.005,0.007,0.01,0.02]
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np
from _common import print_table, write_json

from earmark.core.music import DEFAULT_MUSIC_THRESHOLD
from earmark.core.session import SessionConfig
from earmark.inference.vad import SileroVad
from earmark.inference.whisper import WhisperBackend
from earmark.live.offline import transcribe_samples
from earmark_eval import load_items, read_mono_16k

KINDS = ("nonspeech", "short_read", "conversation", "long", "speaker", "language")


class CachedBackend:
    """Replays the model's answer for a request it has seen (same audio, same options)."""

    def __init__(self, backend: WhisperBackend) -> None:
        self.backend = backend
        self.cache: dict[tuple, object] = {}
        self.scores: list[tuple[str, float]] = []  # (item kind, music_prob) per decode
        self.kind = ""

    def __getattr__(self, name: str):  # noqa: ANN204 - proxy
        return getattr(self.backend, name)

    def transcribe(self, audio, options):  # noqa: ANN001, ANN201
        return self.transcribe_batch([audio], [options])[0]

    def transcribe_batch(self, audios, options, **kw):  # noqa: ANN001, ANN201
        out = []
        for audio, option in zip(audios, options, strict=True):
            key = (hashlib.sha1(audio.tobytes()).hexdigest(), option, repr(kw))
            if key not in self.cache:
                self.cache[key] = self.backend.transcribe_batch([audio], [option], **kw)[0]
                self.scores.append((self.kind, self.cache[key].music_prob))
            out.append(self.cache[key])
        return out


def run(backend: CachedBackend, vad: SileroVad, items, threshold, interim):  # noqa: ANN001, ANN201
    finals: dict[str, list[str]] = {}
    for item in items:
        backend.kind = item.kind
        audio = read_mono_16k(item.path).astype(np.float32)
        config = SessionConfig(interim_results=interim, music_threshold=threshold)
        finals[item.id] = [t.text for t in transcribe_samples(audio, backend, vad, config)
                           if t.text.strip()]
    return finals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thresholds", default="0.003,0.005,0.007,0.01,0.02")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    items = [it for kind in KINDS for it in load_items(kind)]
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    backend = CachedBackend(WhisperBackend(None, device="cpu"))
    vad = SileroVad()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    rows = []
    started = time.perf_counter()
    for interim in (True, False):
        base = run(backend, vad, items, None, interim)
        for threshold in thresholds:
            got = run(backend, vad, items, threshold, interim)
            speech = [it for it in items if it.kind != "nonspeech"]
            lost = sum(len(base[it.id]) - len(got[it.id]) for it in speech)
            total = sum(len(base[it.id]) for it in speech)
            noise_words = {it.id: sum(len(t.split()) for t in got[it.id])
                           for it in items if it.kind == "nonspeech"}
            rows.append({
                "interims": "on" if interim else "off",
                "threshold": threshold,
                "speech finals kept": f"{total - lost}/{total}",
                "nonspeech words (off)": sum(len(t.split()) for it in items
                                             if it.kind == "nonspeech" for t in base[it.id]),
                "nonspeech words": sum(noise_words.values()),
                "nonspeech items with text": sum(1 for v in noise_words.values() if v),
            })
    speech_scores = [p for kind, p in backend.scores if kind != "nonspeech"]
    sung_scores = [p for kind, p in backend.scores if kind == "nonspeech"]
    took = time.perf_counter() - started
    print(f"{len(items)} items, {len(backend.scores)} decodes, {took:.0f} s;"
          f" default threshold {DEFAULT_MUSIC_THRESHOLD}")
    print(f"music-note probability per decode: speech p50 {np.median(speech_scores):.5f}, "
          f"p99 {np.quantile(speech_scores, 0.99):.5f}, max {max(speech_scores):.5f}; "
          f"nonspeech decodes {len(sung_scores)}, min {min(sung_scores, default=0):.5f}")
    print_table(rows, list(rows[0]))
    write_json("music", {"default_threshold": DEFAULT_MUSIC_THRESHOLD, "rows": rows,
                         "speech_decodes": len(speech_scores),
                         "speech_p99": float(np.quantile(speech_scores, 0.99)),
                         "speech_max": max(speech_scores),
                         "nonspeech_scores": sung_scores}, args.out)


if __name__ == "__main__":
    main()
