"""Diarization error rate against the manifest's speaker turns (frame-based, 10 ms frames, a
0.25 s collar around every reference boundary, overlap counted): shared by the test and
``benchmarks/diarization.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FRAMES_PER_S = 100


def der(turns: Sequence[dict[str, Any]], hypothesis: Sequence[tuple[float, float, int]],
        duration_s: float, collar_s: float = 0.25) -> dict[str, float]:
    """``turns``: [{"start", "end", "speaker"}]; ``hypothesis``: (start_s, end_s, label).
    Returns der, miss, false_alarm, confusion as shares of scored reference speech."""
    from scipy.optimize import linear_sum_assignment

    n = int(duration_s * FRAMES_PER_S) + 1
    names = sorted({t["speaker"] for t in turns})
    ref = np.zeros((len(names), n), bool)
    scored = np.ones(n, bool)
    for t in turns:
        a, b = int(t["start"] * FRAMES_PER_S), int(t["end"] * FRAMES_PER_S)
        ref[names.index(t["speaker"]), a:b] = True
        for edge in (t["start"], t["end"]):
            scored[max(0, int((edge - collar_s) * FRAMES_PER_S)):
                   int((edge + collar_s) * FRAMES_PER_S)] = False
    labels = sorted({h for _, _, h in hypothesis})
    hyp = np.zeros((len(labels), n), bool)
    for start, end, label in hypothesis:
        hyp[labels.index(label), int(start * FRAMES_PER_S):int(end * FRAMES_PER_S)] = True
    ref, hyp = ref[:, scored], hyp[:, scored]
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    total = max(1, int(n_ref.sum()))
    correct = np.zeros(ref.shape[1])
    if labels:
        overlap = np.array([[(ref[i] & hyp[j]).sum() for j in range(len(labels))]
                            for i in range(len(names))])
        rows, cols = linear_sum_assignment(-overlap)
        for i, j in zip(rows, cols, strict=True):
            correct += ref[i] & hyp[j]
    miss = float(np.maximum(n_ref - n_hyp, 0).sum()) / total
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum()) / total
    confusion = float((np.minimum(n_ref, n_hyp) - correct).sum()) / total
    return {"der": miss + false_alarm + confusion, "miss": miss, "false_alarm": false_alarm,
            "confusion": confusion}
