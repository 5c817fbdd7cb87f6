"""Diarization error rate on the evaldata conversations (speaker turns in the manifest).

The file-job path: Silero speech regions, Resemblyzer d-vectors over 2.4 s windows every 0.4 s,
spectral clustering on the refined affinity, with the true speaker count (as
``diarizationSpeakerCount`` would give it) and with the count estimated. Every 10 ms frame of
detected speech takes the label of the nearest window. DER with a 0.25 s collar, overlap
counted (so overlapped speech is at least a miss). Target: <= 25 % on the two-speaker AMI clips.

    python benchmarks/diarization.py
"""

from __future__ import annotations

import argparse
import json
import time

from _common import print_table, write_json

from earmark.core.chunking import speech_regions
from earmark.core.segmenter import SegmenterConfig
from earmark.evaldata import evaldata_dir, load_items, read_mono_16k
from earmark.evaldata_der import der
from earmark.inference.speakers import SpeakerModel, diarize
from earmark.inference.vad import SileroVad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    manifest = json.loads((evaldata_dir() / "manifest.json").read_text())
    turns = {i["id"]: i["turns"] for i in manifest["items"] if i.get("turns")}
    items = [i for i in load_items("conversation") if i.id in turns]
    if not items:
        raise SystemExit("no evaldata conversations found (set EARMARK_EVALDATA)")
    vad, model = SileroVad(), SpeakerModel()
    rows = []
    for item in items:
        audio = read_mono_16k(item.path)
        whole = len(audio) - len(audio) % 512
        probs = vad.probs(vad.new_state(), audio[:whole])
        regions = speech_regions(probs, SegmenterConfig())
        speakers = len({t["speaker"] for t in turns[item.id]})
        for given in (speakers, None):
            t0 = time.perf_counter()
            track = diarize(model, audio, regions, given)
            took = time.perf_counter() - t0
            hyp = [(f / 100, (f + 1) / 100, track.speaker_at(f * 160) or 0)
                   for r in regions for f in range(r.start_sample // 160, r.end_sample // 160)]
            scores = der(turns[item.id], hyp, item.duration_s)
            rows.append({"item": item.id, "speakers": speakers,
                         "count": "given" if given else f"estimated {track.speakers}",
                         **{k: round(v, 3) for k, v in scores.items()},
                         "seconds": round(took, 2)})
    print_table(rows, list(rows[0]))
    write_json("diarization", {"rows": rows}, args.out)


if __name__ == "__main__":
    main()
