"""Evaluation audio (``../shared/evaldata`` or ``EARMARK_EVALDATA``) and word error rate.

Used by the real-speech tests and the benchmarks; a checkout without the folder skips them.
"""

from __future__ import annotations

import json
import os
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

_REPO_ROOT = Path(__file__).resolve().parents[2]


def evaldata_dir() -> Path:
    return Path(os.environ.get("EARMARK_EVALDATA", _REPO_ROOT.parent / "shared" / "evaldata"))


@dataclass(frozen=True)
class EvalItem:
    id: str
    path: Path
    kind: str
    duration_s: float
    language: str
    reference: str | None
    reference_quality: str | None


def load_items(kind: str | None = None) -> list[EvalItem]:
    """Items of the manifest (of one ``kind``); empty when the folder is absent."""
    root = evaldata_dir()
    manifest = root / "manifest.json"
    if not manifest.exists():
        return []
    data = json.loads(manifest.read_text())
    items = [
        EvalItem(
            id=it["id"],
            path=root / it["file"],
            kind=it["kind"],
            duration_s=float(it["duration_s"]),
            language=it.get("language") or "",
            reference=it.get("reference"),
            reference_quality=it.get("reference_quality"),
        )
        for it in data["items"]
    ]
    return [it for it in items if kind is None or it.kind == kind]


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int, int]:
    """Returns (interleaved int16 samples, sample_rate, channels) of a 16-bit PCM WAV."""
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported here")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data, w.getframerate(), w.getnchannels()


def read_mono_16k(path: Path) -> npt.NDArray[np.float32]:
    data, rate, channels = read_wav(path)
    audio = data.astype(np.float32) / 32768.0
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1)
    if rate != 16000:
        import soxr

        audio = soxr.resample(audio, rate, 16000).astype(np.float32)
    return audio


_PUNCT = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


def trim_silence(audio: npt.NDArray[np.float32],
                 floor_db: float = -40.0) -> npt.NDArray[np.float32]:
    """Drops leading and trailing 16 kHz audio quieter than ``floor_db`` (20 ms frames)."""
    frame = 320
    n = len(audio) // frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(rms) > floor_db)[0]
    if not len(loud):
        return audio
    return audio[loud[0] * frame : (loud[-1] + 1) * frame]


def normalize(text: str) -> str:
    """The manifest's WER convention: lowercase, strip punctuation (keep word-internal
    apostrophes), collapse whitespace."""
    text = _PUNCT.sub(" ", text.lower().replace("-", " "))
    return " ".join(text.split())


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate (total edits / total reference words), normalised text."""
    import jiwer

    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    if not pairs:
        return 0.0
    out = jiwer.process_words([r for r, _ in pairs], [h if h else "" for _, h in pairs])
    return float(out.wer)
