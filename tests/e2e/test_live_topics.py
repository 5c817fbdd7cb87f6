"""Topics and the closing summary on the live socket (topics=true, custom_topic, summarize)
with the real models."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import websockets

from tests.conftest import silence_pcm, spoken_lines
from tests.e2e.client import stream, url

LINES = ["The football match ended with a late goal from the young striker.",
         "Thousands of fans cheered in the stadium as the team lifted the trophy.",
         "To bake the bread, mix the flour with warm water, yeast and a pinch of salt.",
         "Bake the loaf in a hot oven until the crust is golden brown."]


async def test_topics_per_final_and_a_summary_at_the_end(server, speak) -> None:
    session = await stream(server.ws, spoken_lines(speak, LINES), pace=4.0, interim_results=True,
                           topics=True, custom_topic="baking bread", summarize="v2",
                           punctuate=True)
    finals = [r for r in session.finals if r["channel"]["alternatives"][0]["words"]]
    assert len(finals) == len(LINES)
    found = [[t for seg in r["channel"]["alternatives"][0]["topics"]["segments"]
              for t in seg["topics"]] for r in finals]
    assert found[0] and found[0][0]["category"].startswith("Sports"), found[0]
    assert any(t["topic"] == "baking bread" for t in found[2] + found[3]), found[2:]
    assert not any(t["topic"] == "baking bread" for t in found[0] + found[1])
    assert all(0 < t["confidence_score"] <= 1 for f in found for t in f)
    assert all("topics" not in r["channel"]["alternatives"][0] for r in session.interims)
    summaries = session.of_type("Summary")
    assert len(summaries) == 1
    types = [m["type"] for m in session.messages]
    assert types.index("Summary") < types.index("Metadata")  # before Metadata, after finals
    summary = summaries[0]["summary"]
    spoken = " ".join(r["channel"]["alternatives"][0]["transcript"] for r in finals)
    assert summary["result"] == "success" and summary["short"] in spoken
    assert all(sentence.strip() in spoken for sentence in summary["text"].split(". ")[:1])


async def test_strict_mode_reports_only_custom_topics(server, speak) -> None:
    pcm = np.concatenate([silence_pcm(0.3), speak(LINES[0]), silence_pcm(1.2)])
    session = await stream(server.ws, pcm, interim_results=False, topics=True,
                           custom_topic="football", custom_topic_mode="strict")
    topics = [t["topic"] for r in session.finals
              for seg in r["channel"]["alternatives"][0]["topics"]["segments"]
              for t in seg["topics"]]
    assert topics == ["football"]


@pytest.mark.parametrize(("query", "param"), [
    ({"custom_topic": "sport"}, "custom_topic"),
    ({"topics": True, "custom_topic_mode": "loose"}, "custom_topic_mode"),
    ({"summarize": "v9"}, "summarize"),
    ({"intents": True}, "intents"),
])
async def test_bad_topic_options_are_refused(server, query, param) -> None:
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(url(server.ws, **query)):
            pass
    assert orjson.loads(err.value.response.body)["param"] == param
