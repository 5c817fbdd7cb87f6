"""The two live workloads every latency, capacity and accuracy figure is given for.

- ``gapped``: short_read utterances separated by 1-2 s of silence (the easy case).
- ``continuous``: continuous talk, as podcasts, lectures and radio bring it: the 90 s
  ``long_lj001_0021_0032`` reading as it is, then the LJ utterances with their own leading and
  trailing silence trimmed, joined with 0.25 s pauses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from earmark_eval import load_items, read_mono_16k, trim_silence

SR = 16000
NAMES = ("gapped", "continuous")


@dataclass(frozen=True)
class Workload:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    reference: str  # the words of the whole stream, in order
    spans: list[tuple[float, float]]  # (start, end) seconds of each recording in the stream


def gapped(n_items: int = 10, seed: int = 3) -> Workload:
    rng = np.random.default_rng(seed)
    items = [it for it in load_items("short_read") if it.reference][:n_items]
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    parts, spans, pos = [np.zeros(SR // 2, np.float32)], [], SR // 2
    for it in items:
        audio = read_mono_16k(it.path).astype(np.float32)
        spans.append((pos / SR, (pos + len(audio)) / SR))
        gap = np.zeros(int(rng.uniform(1.0, 2.0) * SR), np.float32)
        parts += [audio, gap]
        pos += len(audio) + len(gap)
    return Workload("gapped", np.concatenate(parts),
                    " ".join(it.reference or "" for it in items), spans)


def continuous(pause_s: float = 0.25, max_s: float | None = None) -> Workload:
    long = [it for it in load_items("long") if it.id == "long_lj001_0021_0032"]
    lj = [it for it in load_items("short_read") if it.id.startswith("lj_") and it.reference]
    if not long and not lj:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    parts, spans, refs, pos = [np.zeros(SR // 2, np.float32)], [], [], SR // 2
    for it in long:
        audio = read_mono_16k(it.path).astype(np.float32)
        parts.append(audio)
        spans.append((pos / SR, (pos + len(audio)) / SR))
        refs.append(it.reference or "")
        pos += len(audio)
    for it in lj:
        audio = trim_silence(read_mono_16k(it.path).astype(np.float32))
        gap = np.zeros(int(pause_s * SR), np.float32)
        parts += [gap, audio]
        spans.append(((pos + len(gap)) / SR, (pos + len(gap) + len(audio)) / SR))
        refs.append(it.reference or "")
        pos += len(gap) + len(audio)
        if max_s is not None and pos / SR >= max_s:
            break
    parts.append(np.zeros(SR, np.float32))
    return Workload("continuous", np.concatenate(parts), " ".join(refs), spans)


def build(name: str, **kw) -> Workload:  # noqa: ANN003
    if name == "gapped":
        return gapped(**kw)
    if name == "continuous":
        return continuous(**kw)
    raise SystemExit(f"unknown workload {name!r} (choose from {', '.join(NAMES)})")
