"""Text options on the live socket with the real model and real text models: redaction (also
of interims), profanity masking, find-and-replace, sentiment and entities."""

from __future__ import annotations

import re

import numpy as np

from tests.conftest import silence_pcm, spoken_lines
from tests.e2e.client import stream

LINES = ["My name is John Smith and I live in London.",
         "Call me on 5 5 5, 1 2 3, 4 5 6 7.",
         "What the hell, this damn thing is great, I love it."]


async def test_redaction_profanity_sentiment_entities(server, speak) -> None:
    session = await stream(server.ws, spoken_lines(speak, LINES), pace=4.0, interim_results=True,
                           redact="pii", profanity_filter=True, sentiment=True,
                           detect_entities=True, punctuate=True)
    results = session.results
    assert results and any(not r["is_final"] for r in results)  # interims were checked too
    every = " ".join(r["channel"]["alternatives"][0]["transcript"] for r in results)
    assert "Smith" not in every and "London" not in every
    assert not re.search(r"\b(5 5 5|555|five five five)\b", every), every
    assert not re.search(r"\b(hell|damn)\b", every, re.I), every
    finals = [r["channel"]["alternatives"][0] for r in results if r["is_final"]]
    text = " ".join(a["transcript"] for a in finals)
    assert "[PERSON_NAME]" in text and "[PHONE_NUMBER]" in text and "d***" in text
    phone = next(w for a in finals for w in a["words"] if w["word"] == "[PHONE_NUMBER]")
    assert phone["end"] - phone["start"] > 1.0  # one word spanning the spoken number
    sentiments = [a["sentiments"]["segments"][0] for a in finals if a["transcript"]]
    assert sentiments[-1]["sentiment"] == "positive"
    # Deepgram's place and shape: on the Results, words by index (end_word exclusive)
    final_results = [r for r in results if r["is_final"]]
    assert all("entities" not in a for a in finals)
    found = [(r, e) for r in final_results for e in r["entities"]]
    labels = {e["label"] for _, e in found}
    assert {"PERSON", "PHONE_NUMBER"} <= labels
    for r, e in found:
        words = r["channel"]["alternatives"][0]["words"]
        assert 0 <= e["start_word"] < e["end_word"] <= len(words), e
        assert set(e) == {"label", "value", "raw_value", "confidence", "start_word",
                          "end_word"} and 0 <= e["confidence"] <= 1
    assert all(e["value"] == "[REDACTED]" == e["raw_value"] for _, e in found
               if e["label"] in ("PERSON", "PHONE_NUMBER"))


async def test_replace_and_no_options_leave_text_alone(server, speak) -> None:
    pcm = np.concatenate([silence_pcm(0.3), speak(LINES[0]), silence_pcm(1.0)])
    plain = await stream(server.ws, pcm, interim_results=False, punctuate=True)
    text = plain.final_text
    assert "Smith" in text and "sentiments" not in plain.results[0]["channel"][
        "alternatives"][0]
    replaced = await stream(server.ws, pcm, interim_results=False, replace="london:Paris",
                            punctuate=True)
    assert "Paris" in replaced.final_text and "London" not in replaced.final_text


async def test_numerals_give_digits_with_the_words_times(server, speak) -> None:
    # Whisper writes most numbers as digits already; these it spells out (tiny.en, espeak).
    lines = ["I have three cats and four dogs.", "We walked seven miles before lunch."]
    pcm = spoken_lines(speak, lines)
    plain = await stream(server.ws, pcm, interim_results=False, punctuate=True)
    assert "three" in plain.final_text and "seven" in plain.final_text, plain.final_text
    digits = await stream(server.ws, pcm, interim_results=False, punctuate=True,
                          numerals=True)
    assert "3 cats" in digits.final_text and "7 miles" in digits.final_text, \
        digits.final_text
    words = [w for r in digits.finals for w in r["channel"]["alternatives"][0]["words"]]
    plain_words = [w for r in plain.finals for w in r["channel"]["alternatives"][0]["words"]]
    assert [(w["start"], w["end"]) for w in words] == \
        [(w["start"], w["end"]) for w in plain_words]  # one word each: times unchanged
