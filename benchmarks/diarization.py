"""Diarization error rate on the evaldata conversations (speaker turns in the manifest).

- ``file``: the file-job path: Silero speech regions, Resemblyzer d-vectors over 2.4 s windows
  every 0.4 s, spectral clustering on the refined affinity, with the true speaker count (as
  ``diarizationSpeakerCount`` would give it) and with the count estimated.
- ``live``: the live path (``diarize=true``, stream jobs' ``speaker_labels``): the speech
  regions cut into utterances of at most 15 s as the live session would, each utterance's
  windows labelled by ``LiveSpeakers`` (history re-clustered per final, labels kept), with
  the count given (``diarize_speakers``) and estimated.

Every 10 ms frame of detected speech takes the label of the nearest window. DER with a 0.25 s
collar, overlap counted (so overlapped speech is at least a miss). Target: <= 25 % on the
two-speaker AMI clips. ``one voice`` rows join several reads of one evaldata speaker: a
perfect result finds one speaker (its DER is the share of speech given to another).

    python benchmarks/diarization.py
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import print_table, write_json

from earmark.core.chunking import speech_regions
from earmark.core.segmenter import SegmenterConfig
from earmark.core.speakers import LiveSpeakers, label_at
from earmark.inference.speakers import SpeakerModel, diarize, live_clusterer
from earmark.inference.vad import SileroVad
from earmark_eval import evaldata_dir, load_items, read_mono_16k
from earmark_eval.der import der

MAX_UTTERANCE = 15 * 16000


def live_labels(model: SpeakerModel, audio, regions, given: int | None):  # noqa: ANN001
    """(start_s, end_s, label) per 10 ms frame, and the speakers found, as the live stage
    labels them."""
    speakers = LiveSpeakers(live_clusterer(given, model), max_speakers=given)
    hyp = []
    for region in regions:
        for start in range(region.start_sample, region.end_sample, MAX_UTTERANCE):
            end = min(region.end_sample, start + MAX_UTTERANCE)
            centres, vectors = model.embed_utterance(audio[start:end])
            labels = speakers.receive(vectors)
            for f in range(start // 160, end // 160):
                label = label_at(centres, labels, f * 160 - start)
                hyp.append((f / 100, (f + 1) / 100, 0 if label is None else label))
    return hyp, speakers.speakers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    ap.add_argument("--encoder", choices=("best", "resemblyzer"), default="best",
                    help="best: the SE-Res2Net network where its weights are installed")
    args = ap.parse_args()
    manifest = json.loads((evaldata_dir() / "manifest.json").read_text())
    turns = {i["id"]: i["turns"] for i in manifest["items"] if i.get("turns")}
    items = [i for i in load_items("conversation") if i.id in turns]
    if not items:
        raise SystemExit("no evaldata conversations found (set EARMARK_EVALDATA)")
    vad, model = SileroVad(), SpeakerModel(prefer=args.encoder)
    rows = []
    for item in items:
        audio = read_mono_16k(item.path)
        whole = len(audio) - len(audio) % 512
        probs = vad.probs(vad.new_state(), audio[:whole])
        regions = speech_regions(probs, SegmenterConfig())
        speakers = len({t["speaker"] for t in turns[item.id]})
        for path, given in (("file", speakers), ("file", None), ("live", speakers),
                            ("live", None)):
            t0 = time.perf_counter()
            if path == "file":
                track = diarize(model, audio, regions, given)
                found = track.speakers
                hyp = [(f / 100, (f + 1) / 100, track.speaker_at(f * 160) or 0)
                       for r in regions for f in range(r.start_sample // 160,
                                                       r.end_sample // 160)]
            else:
                hyp, found = live_labels(model, audio, regions, given)
            took = time.perf_counter() - t0
            scores = der(turns[item.id], hyp, item.duration_s)
            rows.append({"item": item.id, "path": path, "speakers": speakers,
                         "count": f"given, found {found}" if given else f"estimated {found}",
                         **{k: round(v, 3) for k, v in scores.items()},
                         "seconds": round(took, 2)})
    for name, audio in one_voice_streams():
        probs = vad.probs(vad.new_state(), audio[: len(audio) - len(audio) % 512])
        regions = speech_regions(probs, SegmenterConfig())
        hyp, found = live_labels(model, audio, regions, None)
        scores = der([{"start": 0.0, "end": len(audio) / 16000, "speaker": name}], hyp,
                     len(audio) / 16000)
        rows.append({"item": f"one voice {name}", "path": "live", "speakers": 1,
                     "count": f"estimated {found}",
                     **{k: round(v, 3) for k, v in scores.items()}, "seconds": 0.0})
    print(f"encoder: {model.spec.name}")
    print_table(rows, list(rows[0]))
    write_json(f"diarization_{model.spec.name}", {"encoder": model.spec.name, "rows": rows},
               args.out)


def one_voice_streams():  # noqa: ANN201
    """Up to five reads of each evaldata speaker with at least two, joined."""
    manifest = json.loads((evaldata_dir() / "manifest.json").read_text())
    who = {i["id"]: tuple(i.get("speakers") or ()) for i in manifest["items"]}
    by: dict[tuple[str, ...], list] = {}
    for item in load_items("short_read"):
        if len(who.get(item.id, ())) == 1:
            by.setdefault(who[item.id], []).append(item)
    for speaker, items in sorted(by.items()):
        if len(items) >= 2:
            yield speaker[0], np.concatenate([read_mono_16k(i.path) for i in items[:5]])


if __name__ == "__main__":
    main()
