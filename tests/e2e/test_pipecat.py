"""pipecat's ``DeepgramSTTService`` with its Silero VAD in a small pipeline, against the
default server (tests/pipecat/pipeline.py, in pipecat's own venv that ``make setup`` builds)."""

from __future__ import annotations

import subprocess

import numpy as np
import orjson
import pytest

from earmark_eval import wer
from tests.conftest import ROOT, silence_pcm
from tests.e2e.client import wav_bytes

FIRST = "Good morning everyone. Today we will talk about the weather."
SECOND = "My name is John Smith and I live in London. I love this city."
PYTHON = ROOT / ".venv-pipecat" / "bin" / "python"


def test_pipecat_gets_finals_and_an_answer_to_every_finalize(server, speak, tmp_path) -> None:
    if not PYTHON.exists():
        pytest.fail("pipecat's venv is missing: run `make setup` (it builds .venv-pipecat)")
    clip = np.concatenate([silence_pcm(0.3), speak(FIRST), silence_pcm(1.5), speak(SECOND),
                           silence_pcm(1.0)])
    audio = tmp_path / "talk.wav"
    audio.write_bytes(wav_bytes(clip))
    run = subprocess.run([str(PYTHON), str(ROOT / "tests" / "pipecat" / "pipeline.py"),
                          server.http, str(audio)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    out = orjson.loads(run.stdout.strip().splitlines()[-1])
    text = " ".join(f["text"] for f in out["finals"])
    assert wer([f"{FIRST} {SECOND}"], [text]) < 0.2, text
    assert out["interims"] > 0
    # its VAD saw the user stop at least once per sentence pair; each Finalize was answered
    assert out["finalizes"] >= 2 and out["answers"] == out["finalizes"], out
    words = [w for f in out["finals"] for w in f["words"]]
    assert all(a["end"] <= b["start"] + 1e-3 for a, b in zip(words, words[1:], strict=False))
    assert words[-1]["end"] <= len(clip) / 16000
