"""Speaker labels on the live socket (``diarize=true``) with the real speaker encoder: two
espeak-ng voices (a man's and a woman's) taking turns, and refusals of bad options."""

from __future__ import annotations

from collections import Counter

import numpy as np
import orjson
import pytest
import websockets

from tests.conftest import espeak, silence_pcm
from tests.e2e.client import stream, url

TURNS = [("en-us", "Good morning, thanks for joining the planning call today."),
         ("en-us+f3", "Happy to be here, I have the numbers from last week ready."),
         ("en-us", "Great, let us start with the budget for the new office."),
         ("en-us+f3", "The budget grew by ten percent because of the rent."),
         ("en-us", "That is more than we expected, can we lower it?"),
         ("en-us+f3", "We could move to a smaller floor next spring.")]


@pytest.fixture(scope="module")
def dialogue() -> np.ndarray:
    parts = [silence_pcm(0.3)]
    for voice, text in TURNS:
        parts += [espeak(text, voice), silence_pcm(1.0)]
    return np.concatenate(parts)


def _turn_labels(session) -> list[int]:  # noqa: ANN001
    """The majority speaker of each final with words, in order."""
    out = []
    for r in session.finals:
        words = r["channel"]["alternatives"][0]["words"]
        if words:
            out.append(Counter(w["speaker"] for w in words).most_common(1)[0][0])
    return out


@pytest.mark.parametrize("hint", [{"diarize_speakers": 2}, {}])
async def test_two_voices_get_two_stable_labels(server, dialogue, hint) -> None:
    session = await stream(server.ws, dialogue, pace=4.0, interim_results=True, diarize=True,
                           **hint)
    labels = _turn_labels(session)
    assert len(labels) == len(TURNS), session.final_text
    assert labels == [0, 1, 0, 1, 0, 1], labels
    # Interims carry labels too.
    assert all("speaker" in w for r in session.interims
               for w in r["channel"]["alternatives"][0]["words"])


async def test_no_speaker_field_unless_asked(server, dialogue) -> None:
    session = await stream(server.ws, dialogue[: 16000 * 5], interim_results=False)
    words = [w for r in session.finals for w in r["channel"]["alternatives"][0]["words"]]
    assert words and all("speaker" not in w for w in words)


@pytest.mark.parametrize("query", [{"diarize_speakers": 2},
                                   {"diarize": True, "diarize_speakers": 0},
                                   {"diarize": "maybe"}])
async def test_bad_speaker_options_are_refused(server, query) -> None:
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(url(server.ws, **query)):
            pass
    response = err.value.response
    assert response.status_code == 400
    assert orjson.loads(response.body)["param"].startswith("diarize")


async def test_multichannel_transcribes_each_channel_on_its_own(server) -> None:
    """Two people on two channels, talking over each other: each channel's words come back on
    its own channel_index, none mixed into the other."""
    left = np.concatenate([silence_pcm(0.3), espeak(TURNS[0][1], "en-us"), silence_pcm(2.5)])
    right = np.concatenate([silence_pcm(1.0), espeak(TURNS[3][1], "en-us+f3"),
                            silence_pcm(2.5)])
    n = max(len(left), len(right))
    stereo = np.zeros((n, 2), np.int16)
    stereo[: len(left), 0] = left
    stereo[: len(right), 1] = right
    session = await stream(server.ws, stereo.reshape(-1), channels=2, multichannel=True,
                           interim_results=True, pace=4.0, vad_events=True)
    by_channel: dict[int, str] = {0: "", 1: ""}
    for r in session.finals:
        assert r["channel_index"][1] == 2
        by_channel[r["channel_index"][0]] += " " + r["channel"]["alternatives"][0]["transcript"]
    assert "planning call" in by_channel[0] and "rent" not in by_channel[0], by_channel
    assert "rent" in by_channel[1] and "planning" not in by_channel[1], by_channel
    assert {tuple(m["channel"]) for m in session.of_type("SpeechStarted")} == {(0,), (1,)}
    assert session.of_type("Metadata")[0]["channels"] == 2


async def test_multichannel_is_refused_on_a_pulled_url(server) -> None:
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(url(server.ws, multichannel=True, channels=2,
                                          url="http://127.0.0.1:9/a.ts")):
            pass
    assert orjson.loads(err.value.response.body)["param"] == "multichannel"
