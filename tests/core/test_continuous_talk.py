"""Continuous talk: finals at short pauses during speech, Deepgram's is_final/speech_final.

Sentences of adjacent words (no gap inside a sentence) separated by pauses shorter than the
endpoint, as podcasts and lectures bring them; the fake VAD hears any non-zero window.
"""

import dataclasses

import numpy as np
import pytest

from earmark.core import SAMPLE_RATE
from earmark.core.events import Priority, Transcript
from earmark.core.segmenter import SegmenterConfig
from earmark.core.session import SessionConfig, StreamSession
from tests.core.fakes import WORD, Driver, check_invariants, fake_recognize, silence


def talk(sentences: list[int], pause_s: float, first_word: int = 0) -> np.ndarray:
    """Sentences of ``n`` adjacent words each, ``pause_s`` of silence after each."""
    parts, k = [], first_word
    for n in sentences:
        for _ in range(n):
            parts.append(np.full(WORD, (k + 1) / 1000, dtype=np.float32))
            k += 1
        parts.append(silence(pause_s))
    return np.concatenate(parts)


def config(**kw) -> SessionConfig:
    """Pause cuts alone (agreement has its own tests below)."""
    kw.setdefault("segmenter", SegmenterConfig(silence_samples=8000, pad_samples=3200))
    kw.setdefault("agreement_margin_samples", None)
    return SessionConfig(**kw)


def words_of(finals: list[Transcript]) -> list[str]:
    return [w.text for f in finals for w in f.words]


def test_finals_come_at_short_pauses_while_the_talk_goes_on():
    d = Driver(StreamSession(config()))
    audio = talk([5, 5, 5, 5], pause_s=0.25)  # 1.5 s sentences, 250 ms pauses
    d.feed(audio)
    # Every sentence is final at its own pause, before the stream ends.
    assert [f.text for f in d.finals if f.words] == [
        "w0 w1 w2 w3 w4", "w5 w6 w7 w8 w9", "w10 w11 w12 w13 w14", "w15 w16 w17 w18 w19"]
    assert not any(f.speech_final for f in d.finals), "no pause reached endpointing"
    d.feed(silence(1.0))
    assert words_of(d.finals) == [f"w{k}" for k in range(20)], "each word once, in order"
    assert d.finals[-1].speech_final, "the endpoint still says speech_final"
    assert sum(f.speech_final for f in d.finals) == 1
    check_invariants(d.events, len(audio) + SAMPLE_RATE)


def test_the_endpoint_after_a_pause_cut_is_an_empty_speech_final_without_a_decode():
    d = Driver(StreamSession(config(interim_results=False)))
    d.feed(np.concatenate([talk([6], pause_s=0.0), silence(1.0)]))
    # Cut at the first 96 ms of silence, then the endpoint: Deepgram's is_final then
    # speech_final, and the silence between them never reaches the model.
    assert [(f.text, f.speech_final) for f in d.finals] == [("w0 w1 w2 w3 w4 w5", False),
                                                            ("", True)]
    finals = [r for r in d.requests if r.priority is Priority.FINAL]
    assert len(finals) == 1 and np.any(finals[0].audio)


def test_speech_final_only_at_pauses_of_at_least_endpointing():
    d = Driver(StreamSession(config()))
    d.feed(np.concatenate([talk([5, 5], pause_s=0.3), talk([5], 0.6, first_word=10),
                           talk([5], 0.2, first_word=15), silence(1.0)]))
    speech_finals = [f for f in d.finals if f.speech_final]
    assert len(speech_finals) == 2  # after the 600 ms pause and at the end
    assert words_of(d.finals) == [f"w{k}" for k in range(20)]


def test_a_short_stretch_is_not_cut_at_its_pause():
    d = Driver(StreamSession(config(pause_cut_after_samples=2 * SAMPLE_RATE)))
    d.feed(talk([2, 2], pause_s=0.2))  # 1.4 s in all: each pause comes too early
    assert not [f for f in d.finals if f.words]
    d.feed(silence(1.0))
    assert [f.text for f in d.finals if f.words] == ["w0 w1 w2 w3"]


def test_pause_cuts_off_keeps_one_final_per_endpoint():
    d = Driver(StreamSession(config(pause_cut_after_samples=None)))
    d.feed(np.concatenate([talk([5, 5, 5], pause_s=0.25), silence(1.0)]))
    assert [f.text for f in d.finals if f.words] == [" ".join(f"w{k}" for k in range(15))]


def test_finalize_during_continuous_talk_is_answered_and_loses_nothing():
    d = Driver(StreamSession(config()))
    d.feed(talk([5, 5], pause_s=0.25))
    d.feed(talk([2], pause_s=0.0, first_word=10)[: WORD * 2])
    d.session.receive_finalize()
    d.pump()
    assert d.finals[-1].from_finalize and d.finals[-1].text == "w10 w11"
    d.feed(silence(1.0))
    assert words_of(d.finals) == [f"w{k}" for k in range(12)]


def test_requests_after_a_final_carry_its_text_for_the_music_check():
    d = Driver(StreamSession(config()))
    d.feed(np.concatenate([talk([5, 5], pause_s=0.25), silence(1.0)]))
    later = [r for r in d.requests if r.start_sample >= d.finals[0].end_sample]
    assert later and all(r.previous_text and r.previous_text.startswith("w0 w1 w2 w3 w4")
                         for r in later)
    far = Driver(StreamSession(config(context_samples=SAMPLE_RATE)))
    far.feed(np.concatenate([talk([5], 0.0), silence(3.0), talk([5], 1.0, first_word=5)]))
    second = [r for r in far.requests if r.start_sample > far.finals[0].end_sample]
    assert second and all(r.previous_text is None for r in second), "3 s gap: no context"


def test_every_finalize_is_answered_even_with_nothing_pending():
    d = Driver(StreamSession(config(interim_results=False)))
    d.feed(silence(0.5))
    d.session.receive_finalize()  # in silence
    d.pump()
    assert [(f.text, f.from_finalize) for f in d.finals] == [("", True)]
    d.feed(talk([6], pause_s=0.3, first_word=0))  # words final at the pause cut
    d.session.receive_finalize()
    d.pump()
    assert [(f.text, f.from_finalize) for f in d.finals][1:] == [("w0 w1 w2 w3 w4 w5", False),
                                                                 ("", True)]


# ------------------------------------------------------------------ local agreement
class Wavering:
    """The fake recogniser, except that the newest word of an interim decode is misheard
    the first time it is heard: consecutive decodes disagree on it."""

    def __init__(self) -> None:
        self.heard: set[str] = set()

    def __call__(self, request):  # noqa: ANN001, ANN204
        result = fake_recognize(request)
        if request.priority is not Priority.PARTIAL or not result.words:
            return result
        last = result.words[-1]
        if last.text in self.heard:
            return result
        self.heard.add(last.text)
        return dataclasses.replace(
            result, words=(*result.words[:-1], dataclasses.replace(last, text="uh")))


def agreeing(**kw) -> StreamSession:
    kw.setdefault("segmenter", SegmenterConfig(silence_samples=8000, pad_samples=3200))
    return StreamSession(SessionConfig(**kw))


def test_talk_without_pauses_is_final_word_by_word_as_decodes_agree():
    wavering = Wavering()
    d = Driver(agreeing(), recognize=wavering)
    audio = talk([30], pause_s=0.0)  # 9 s of words, no pause at all
    d.feed(audio)
    early = [f for f in d.finals if f.words]
    assert early, "finals during the talk, not only at its end"
    assert all(not f.speech_final for f in early)
    said = words_of(early)
    assert said == [f"w{k}" for k in range(len(said))] and len(said) >= 20
    assert "uh" not in said, "a word two decodes disagree on is never final"
    d.feed(silence(1.0))
    assert words_of(d.finals) == [f"w{k}" for k in range(30)], "each word once, in order"
    assert d.finals[-1].speech_final
    check_invariants(d.events, len(audio) + SAMPLE_RATE)


def test_agreed_words_never_change_and_the_piece_final_drops_them():
    d = Driver(agreeing())
    d.feed(np.concatenate([talk([8, 8], pause_s=0.25), silence(1.0)]))
    texts = words_of(d.finals)
    assert texts == [f"w{k}" for k in range(16)]
    # The pause-cut final of a piece with agreed words decodes the whole piece again (the
    # model hears the sentence) and sends only what was not final yet.
    pieces = [r for r in d.requests if r.priority is Priority.FINAL]
    assert pieces and pieces[0].start_sample == 0


def test_no_agreement_without_interim_decodes():
    d = Driver(agreeing(interim_results=False))
    d.feed(talk([10], pause_s=0.0))
    assert not d.finals


class Drifting:
    """The fake recogniser, except that a decode of more than 2 s hears the first word
    differently and places every word 0.3 s early: the agreed words are not a prefix of its
    text, and by time alone the first word after them would look already agreed."""

    def __call__(self, request):  # noqa: ANN001, ANN204
        result = fake_recognize(request)
        if len(request.audio) <= 2 * SAMPLE_RATE or not result.words:
            return result
        shift = int(0.3 * SAMPLE_RATE)
        words = [dataclasses.replace(w, text="x" if w.text == "w0" else w.text,
                                     start_sample=max(0, w.start_sample - shift),
                                     end_sample=max(0, w.end_sample - shift))
                 for w in result.words]
        return dataclasses.replace(result, words=tuple(words))


def test_a_decode_that_hears_an_earlier_word_differently_loses_and_repeats_nothing():
    d = Driver(agreeing(), recognize=Drifting())
    audio = talk([20], pause_s=0.0)
    d.feed(np.concatenate([audio, silence(1.0)]))
    assert words_of([f for f in d.finals if f.words])[0] == "w0", "agreed before the drift"
    assert words_of(d.finals) == [f"w{k}" for k in range(20)], "each word once, in order"
    check_invariants(d.events, len(audio) + SAMPLE_RATE)


def test_where_the_text_does_not_show_the_seam_nothing_more_is_agreed():
    from earmark.core.agreement import match_agreed
    from earmark.core.events import Word

    def ws(*spec: tuple[str, int, int]) -> list[Word]:
        return [Word(t, s, e, 0.9) for t, s, e in spec]

    agreed = ws(("the", 0, 100), ("movable", 100, 400), ("metal", 400, 500),
                ("type", 500, 600))
    heard = ws(("the", 0, 100), ("moveable", 100, 380), ("metal", 380, 480),
               ("type", 480, 560), ("letters", 560, 700))
    assert match_agreed(agreed, heard) == (heard[4:], True)  # the agreed tail, aligned
    # Nothing of the agreed tail repeats: time decides, and the seam is a guess.
    guess = ws(("a", 0, 100), ("moving", 100, 580), ("letters", 590, 700))
    assert match_agreed(agreed, guess) == (guess[2:], False)


def punctuating(request):  # noqa: ANN001, ANN201
    """The fake recogniser, with a full stop after every tenth word (w9., w19., ...)."""
    result = fake_recognize(request)
    words = [dataclasses.replace(w, text=w.text + ".") if w.text[1:].endswith("9") else w
             for w in result.words]
    return dataclasses.replace(result, words=tuple(words))


@pytest.mark.parametrize("limit", [8 * SAMPLE_RATE, None])
def test_a_long_piece_restarts_after_its_last_agreed_sentence(limit):
    # Agreement makes words final word by word, up to each pause, so no pause cut comes
    # (1.5 s since the last final never pass); the piece is still decoded from its start.
    d = Driver(agreeing(agreement_margin_samples=1600, partial_interval_samples=3200,
                        agreement_piece_samples=limit), recognize=punctuating)
    audio = talk([10] * 6, pause_s=0.25)  # 3 s sentences, 250 ms pauses, 19.5 s in all
    d.feed(np.concatenate([audio, silence(1.0)]))
    assert [w.rstrip(".") for w in words_of(d.finals)] == [f"w{k}" for k in range(60)]
    longest = max(len(r.audio) for r in d.requests) / SAMPLE_RATE
    if limit is None:
        assert longest > 14.0  # to the forced cut
    else:
        assert longest < 9.0, f"a decode re-read {longest:.1f} s"
        starts = {r.start_sample for r in d.requests if r.priority is Priority.PARTIAL}
        ends = {w.end_sample for f in d.finals for w in f.words if w.text.endswith(".")}
        assert starts & ends, "decodes start after a sentence"
    check_invariants(d.events, len(audio) + SAMPLE_RATE)
