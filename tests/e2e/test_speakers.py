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
