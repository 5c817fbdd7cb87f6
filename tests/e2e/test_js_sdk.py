"""The official Deepgram JavaScript SDK (``@deepgram/sdk``, under Node) against a local server:
pre-recorded ``transcribeFile`` and a live socket with Finalize (tests/js/deepgram_sdk.mjs;
``make setup`` installs it with ``npm ci`` from tests/js/package-lock.json)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import orjson
import pytest

from earmark_eval import wer
from tests.conftest import ROOT, silence_pcm
from tests.e2e.client import wav_bytes

FIRST = "Good morning everyone. Today we will talk about the weather."
SECOND = "My name is John Smith and I live in London. I love this city."
JS = ROOT / "tests" / "js"


def test_the_js_sdk_transcribes_a_file_and_a_live_stream(server, speak, tmp_path) -> None:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "@deepgram" / "sdk").exists():
        pytest.fail("Node or the JS SDK is missing: run `make setup` (nodejs and npm from "
                    "Debian, then npm ci in tests/js)")
    first = np.concatenate([silence_pcm(0.3), speak(FIRST)])
    clip = np.concatenate([first, silence_pcm(1.5), speak(SECOND), silence_pcm(0.5)])
    (tmp_path / "talk.wav").write_bytes(wav_bytes(clip))
    (tmp_path / "talk.pcm").write_bytes(clip.astype("<i2").tobytes())
    finalize_at = len(first) / 16000 + 0.2  # the client's VAD: 200 ms into the pause
    run = subprocess.run([node, str(JS / "deepgram_sdk.mjs"), server.http, server.ws,
                          str(tmp_path / "talk.wav"), str(tmp_path / "talk.pcm"),
                          f"{finalize_at:.2f}"], capture_output=True, text=True, timeout=180,
                         cwd=JS)
    assert run.returncode == 0, run.stderr[-3000:]
    out = orjson.loads(run.stdout.strip().splitlines()[-1])
    reference = f"{FIRST} {SECOND}"

    pre = out["prerecorded"]
    assert wer([reference], [pre["results"]["channels"][0]["alternatives"][0]["transcript"]]) \
        < 0.2, pre
    assert len(pre["results"]["utterances"]) >= 2

    results = [m for m in out["messages"] if m.get("type") == "Results"]
    finals = [m for m in results if m["is_final"]]
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals)
    assert wer([reference], [text]) < 0.2, text
    # every Finalize is answered, once: the one in the pause and the one at the end
    answered = [m for m in finals if m["from_finalize"]]
    assert len(answered) == 2, [(m["start"], m["duration"]) for m in answered]
    first_answer = answered[0]
    assert first_answer["start"] + first_answer["duration"] <= finalize_at + 0.2
    words = [w for m in finals for w in m["channel"]["alternatives"][0]["words"]]
    assert all(a["end"] <= b["start"] + 1e-3 for a, b in zip(words, words[1:], strict=False))
    assert any(not m["is_final"] for m in results)  # interims
    assert [m["type"] for m in out["messages"]].count("Metadata") == 1
