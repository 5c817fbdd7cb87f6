import numpy as np
import pytest

from earmark.core import SAMPLE_RATE
from earmark.core.events import SpeechStarted, StreamClosed, UtteranceEnd
from earmark.core.segmenter import SegmenterConfig
from earmark.core.session import SessionConfig, StreamSession
from earmark.errors import RecognitionFailed
from tests.core.fakes import SUNG_FROM, Driver, check_invariants, silence, utterance


def config(**kw) -> SessionConfig:
    """The endpoint policy alone: the fake words' 100 ms gaps would be pause cuts, and the
    fake recogniser's decodes always agree (tests/core/test_continuous_talk.py has both)."""
    kw.setdefault("segmenter", SegmenterConfig(silence_samples=8000, pad_samples=3200))
    kw.setdefault("pause_cut_after_samples", None)
    kw.setdefault("agreement_margin_samples", None)
    return SessionConfig(**kw)


def texts(transcripts) -> list[str]:
    return [t.text for t in transcripts]


def test_two_utterances_give_interims_then_one_final_each():
    d = Driver(StreamSession(config(vad_events=True)))
    audio = np.concatenate([silence(0.5), utterance(0, 4), silence(1.0), utterance(4, 3),
                            silence(1.0)])
    d.feed(audio)
    assert texts(d.finals) == ["w0 w1 w2 w3", "w4 w5 w6"]
    assert all(f.speech_final and not f.from_finalize for f in d.finals)
    assert d.interims, "interim results while speaking"
    assert sum(isinstance(e, SpeechStarted) for e in d.events) == 2
    check_invariants(d.events, len(audio))


def test_interims_only_when_text_changes_and_never_after_their_final():
    d = Driver(StreamSession(config()))
    d.feed(np.concatenate([utterance(0, 6), silence(1.0)]))
    interim_texts = texts(d.interims)
    assert len(interim_texts) == len(set(interim_texts))
    first_final = d.events.index(d.finals[0])
    assert all(e.is_final for e in d.events[first_final:] if hasattr(e, "is_final"))


def test_long_speech_is_cut_at_word_boundaries_without_losing_or_repeating_words():
    cfg = config(max_utterance_samples=3 * SAMPLE_RATE, hold_back_samples=8000)
    d = Driver(StreamSession(cfg))
    audio = np.concatenate([utterance(0, 30), silence(1.0)])  # 12 s of unbroken speech
    d.feed(audio)
    words = " ".join(texts(d.finals)).split()
    assert words == [f"w{k}" for k in range(30)]
    assert len(d.finals) >= 4
    assert not any(f.speech_final for f in d.finals[:-1]), "forced finals are not speech_final"
    assert d.finals[-1].speech_final
    check_invariants(d.events, len(audio))


def test_a_forced_cut_through_a_word_the_recogniser_drops_loses_nothing():
    # Whisper drops a word the cut leaves half of, and cannot name the other half either: the
    # next final must start before the whole word (issue 26: "movable [types]" at a cut).
    from tests.core.fakes import WORD, fake_recognize

    def no_fragments(request):
        heard = fake_recognize(request)
        whole = tuple(w for w in heard.words if w.end_sample - w.start_sample >= WORD)
        return type(heard)(whole, music_prob=heard.music_prob)

    cfg = config(max_utterance_samples=3 * SAMPLE_RATE, hold_back_samples=1600,
                 interim_results=False)
    d = Driver(StreamSession(cfg), recognize=no_fragments)
    audio = np.concatenate([utterance(0, 30), silence(1.0)])
    d.feed(audio)
    assert len(d.finals) >= 4, "forced cuts happened"
    assert " ".join(texts(d.finals)).split() == [f"w{k}" for k in range(30)]
    check_invariants(d.events, len(audio))


def test_slow_recogniser_partial_results_arriving_after_the_final_are_dropped():
    d = Driver(StreamSession(config()), hold=True)
    d.feed(utterance(0, 4))
    partial = d.held[0]
    d.feed(silence(1.0))  # endpoint: final job waits behind nothing (finals are separate)
    final = next(r for r in d.held if r.priority.name == "FINAL")
    d.answer(final)
    d.answer(partial)  # late: its audio is already final
    d.answer_all()
    assert texts(d.finals) == ["w0 w1 w2 w3"]
    check_invariants(d.events, d.session.now_sample)


def test_finalize_flushes_the_open_utterance():
    d = Driver(StreamSession(config()))
    d.feed(utterance(0, 3))
    d.session.receive_finalize()
    d.pump()
    assert texts(d.finals) == ["w0 w1 w2"]
    assert d.finals[0].from_finalize and not d.finals[0].speech_final
    d.feed(np.concatenate([utterance(3, 2), silence(1.0)]))
    assert texts(d.finals) == ["w0 w1 w2", "w3 w4"]
    check_invariants(d.events, d.session.now_sample)


def test_a_finalize_in_a_pause_takes_the_final_decoded_during_the_pause():
    """The voice-agent pattern: Finalize ~200 ms into the user's silence. The final
    decoded speculatively once the pause was long enough is the answer: no second decode
    of the same speech, and no trailing silence in the region."""
    d = Driver(StreamSession(config(early_final_samples=3200)), hold=True)
    d.feed(np.concatenate([utterance(0, 3), silence(0.3)]))
    early = [r for r in d.held if r.priority.name == "FINAL"]
    assert len(early) == 1  # decoded speculatively during the pause
    d.session.receive_finalize()
    d.pump()
    assert [r for r in d.held if r.priority.name == "FINAL"] == early  # not decoded again
    d.answer_all()
    assert texts(d.finals) == ["w0 w1 w2"] and d.finals[0].from_finalize
    assert d.finals[0].end_sample < d.session.now_sample  # the pause's pad, not all of it
    check_invariants(d.events, d.session.now_sample)


def test_the_final_that_answers_a_finalize_can_have_its_own_beam():
    d = Driver(StreamSession(config(finalize_beam_size=1, early_final_samples=None)))
    d.feed(np.concatenate([utterance(0, 3), silence(1.0), utterance(3, 2)]))
    d.session.receive_finalize()
    d.pump()
    finals = [r for r in d.requests if r.priority.name == "FINAL"]
    assert [r.beam_size for r in finals] == [None, 1]  # the endpoint's, then the Finalize's
    assert texts(d.finals) == ["w0 w1 w2", "w3 w4"] and d.finals[1].from_finalize


def test_after_a_finalize_the_next_final_is_speculated_sooner():
    d = Driver(StreamSession(config(early_final_samples=3200, finalize_early_samples=512)),
               hold=True)

    def finals_asked() -> int:
        return len([r for r in d.requests if r.priority.name == "FINAL"])

    # Each fake utterance ends with 0.1 s of silence; 0.15 s in all here.
    d.feed(np.concatenate([utterance(0, 3), silence(0.05)]), chunk_windows=1)
    assert finals_asked() == 0  # a plain client: 200 ms of silence first
    d.session.receive_finalize()
    d.pump()
    d.answer_all()
    d.hold = True
    d.feed(np.concatenate([utterance(3, 3), silence(0.05)]), chunk_windows=1)
    # a client that sends Finalize: after 32 ms (also in the fake words' 100 ms gaps,
    # dropped when the speech goes on)
    asked = finals_asked()
    assert asked >= 2
    d.session.receive_finalize()
    d.pump()
    assert finals_asked() == asked  # the speculative decode of the last pause answers it
    d.answer_all()
    assert texts(d.finals) == ["w0 w1 w2", "w3 w4 w5"]
    check_invariants(d.events, d.session.now_sample)


def test_close_flushes_everything_then_reports_closed():
    d = Driver(StreamSession(config()), hold=True)
    d.feed(utterance(0, 3))
    d.session.receive_close()
    d.pump()
    assert not any(isinstance(e, StreamClosed) for e in d.events)
    d.answer_all()
    assert texts(d.finals) == ["w0 w1 w2"]
    assert isinstance(d.events[-1], StreamClosed)


def test_interim_results_off_sends_finals_only():
    d = Driver(StreamSession(config(interim_results=False)))
    d.feed(np.concatenate([utterance(0, 5), silence(1.0)]))
    assert not d.interims
    assert all(r.priority.name == "FINAL" for r in d.requests)
    assert texts(d.finals) == ["w0 w1 w2 w3 w4"]


def test_endpointing_off_sends_finals_without_speech_final():
    d = Driver(StreamSession(config(speech_final=False)))
    d.feed(np.concatenate([utterance(0, 2), silence(1.0)]))
    assert texts(d.finals) == ["w0 w1"] and not d.finals[0].speech_final


def test_utterance_end_after_the_gap():
    d = Driver(StreamSession(config(utterance_end_samples=SAMPLE_RATE)))
    d.feed(np.concatenate([utterance(0, 2), silence(0.6)]))
    assert not any(isinstance(e, UtteranceEnd) for e in d.events)
    d.feed(silence(1.0))
    ends = [e for e in d.events if isinstance(e, UtteranceEnd)]
    assert len(ends) == 1 and ends[0].last_word_end_sample == d.finals[0].words[-1].end_sample


def test_silence_produces_nothing_and_keeps_memory_bounded():
    d = Driver(StreamSession(config()))
    d.feed(silence(60.0), chunk_windows=32)
    assert d.events == [] and d.requests == []
    assert d.session.buffer.end_sample - d.session.buffer.start_sample < SAMPLE_RATE


def test_failed_partial_is_harmless_but_failed_final_raises():
    s = StreamSession(config())
    d = Driver(s, hold=True)
    d.feed(utterance(0, 3))
    partial = d.held.pop(0)
    s.receive_failure(partial.request_id)
    d.feed(silence(1.0))
    final = next(r for r in d.held if r.priority.name == "FINAL")
    with pytest.raises(RecognitionFailed):
        s.receive_failure(final.request_id)


def test_audio_must_be_whole_windows():
    s = StreamSession(config())
    with pytest.raises(ValueError):
        s.receive_audio(np.zeros(100, dtype=np.float32), [0.0])


def test_early_final_is_decoded_during_the_endpoint_silence_and_reused():
    cfg = config(early_final_samples=3200)
    d = Driver(StreamSession(cfg), hold=True)
    d.feed(np.concatenate([utterance(0, 3), silence(0.3)]))  # silence < endpointing (0.5 s)
    early = [r for r in d.held if r.priority.name == "FINAL"]
    assert len(early) == 1 and not d.finals
    d.answer(early[0])  # decoded before the endpoint
    d.feed(silence(0.4))  # the endpoint lands where predicted: no second decode
    assert texts(d.finals) == ["w0 w1 w2"]
    assert [r.priority.name for r in d.requests].count("FINAL") == 1
    d.answer_all()
    check_invariants(d.events, d.session.now_sample)


def test_early_final_is_dropped_when_speech_resumes():
    d = Driver(StreamSession(config(early_final_samples=3200)), hold=True)
    d.feed(np.concatenate([utterance(0, 2), silence(0.3)]))
    stale = next(r for r in d.held if r.priority.name == "FINAL")
    d.feed(np.concatenate([utterance(2, 2), silence(1.0)]))
    d.answer(stale)
    d.answer_all()
    assert texts(d.finals) == ["w0 w1 w2 w3"]
    check_invariants(d.events, d.session.now_sample)


def test_no_interim_requests_while_the_speaker_is_silent():
    d = Driver(StreamSession(config(partial_interval_samples=1600, early_final_samples=None)))
    d.feed(utterance(0, 3))
    before = len([r for r in d.requests if r.priority.name == "PARTIAL"])
    d.feed(silence(0.45))  # trailing silence, endpoint not reached yet
    assert len([r for r in d.requests if r.priority.name == "PARTIAL"]) == before


def test_load_shedding_stretches_then_stops_interims_but_never_finals():
    s = StreamSession(config(partial_interval_samples=3200))
    d = Driver(s)
    d.feed(utterance(0, 4))
    normal = len(d.interims)
    s.set_partial_interval(3200 * 4)  # stretched
    d.feed(utterance(4, 4))
    stretched = len(d.interims) - normal
    s.set_partial_interval(None)  # shed
    d.feed(np.concatenate([utterance(8, 4), silence(1.0)]))
    assert len(d.interims) - normal - stretched == 0
    assert 0 < stretched < normal
    assert texts(d.finals) == [" ".join(f"w{k}" for k in range(12))]


def test_lag_counts_audio_no_result_has_covered():
    s = StreamSession(config(interim_results=False, early_final_samples=None))
    d = Driver(s, hold=True)
    d.feed(utterance(0, 5))
    assert s.lag_samples == s.now_sample  # nothing decoded yet
    d.feed(silence(1.0))
    d.answer_all()
    assert s.lag_samples == 0


def test_sung_utterances_give_no_text_but_speech_around_them_does():
    audio = np.concatenate([utterance(0, 3), silence(1.0), utterance(SUNG_FROM, 6),
                            silence(1.0), utterance(3, 2), silence(1.0)])
    d = Driver(StreamSession(config()))
    d.feed(audio)
    assert [t for t in texts(d.finals) if t] == ["w0 w1 w2", "w3 w4"]
    assert not any(f"w{SUNG_FROM}" in t for t in texts(d.interims)), "no sung interims"
    check_invariants(d.events, len(audio))
    # The check can be turned off: then lyrics are transcribed like speech.
    d = Driver(StreamSession(config(music_threshold=None)))
    d.feed(audio)
    assert f"w{SUNG_FROM}" in " ".join(texts(d.finals))


def test_a_song_piece_near_the_bar_after_music_is_music_and_speech_after_it_is_not():
    """Pieces of one song score near the bar one by one ("Let's Go Fishin'": 0.0226, then
    0.0044 after 4.3 s of instrumental): after music the bar is lower, and only for a while."""
    from tests.core.fakes import fake_recognize

    def recognize(request):  # noqa: ANN001, ANN202
        heard = fake_recognize(request)
        first = int(heard.words[0].text[1:]) if heard.words else 0
        # w200..: a song piece that scores between the lower bar and the default one.
        return type(heard)(heard.words, music_prob=0.0045 if first >= 200 else heard.music_prob)

    audio = np.concatenate([utterance(SUNG_FROM, 6), silence(4.5), utterance(200, 4),
                            silence(1.0), utterance(0, 3), silence(11.0), utterance(204, 3),
                            silence(1.0)])
    d = Driver(StreamSession(config()), recognize=recognize)
    d.feed(audio)
    got = [t for t in texts(d.finals) if t]
    # The near-bar piece right after the song is dropped, speech after it is kept, and a
    # near-bar piece long after any music is taken as speech.
    assert got == ["w0 w1 w2", "w204 w205 w206"], got
    check_invariants(d.events, len(audio))


def test_a_stale_early_final_is_handed_back_for_cancelling():
    d = Driver(StreamSession(config(early_final_samples=3200)), hold=True)
    d.feed(np.concatenate([utterance(0, 2), silence(0.3)]))
    stale = next(r for r in d.held if r.priority.name == "FINAL")
    assert d.session.requests_to_cancel() == []
    d.feed(utterance(2, 2))  # the speaker goes on: the speculation is worthless
    assert d.session.requests_to_cancel() == [stale.request_id]
    assert d.session.requests_to_cancel() == []  # swapped out once
    d.feed(silence(1.0))
    d.answer_all()
    assert texts(d.finals) == ["w0 w1 w2 w3"]


def test_early_finals_pause_while_the_model_is_behind():
    d = Driver(StreamSession(config(early_final_samples=3200)), hold=True)
    d.session.set_early_finals(False)
    d.feed(np.concatenate([utterance(0, 3), silence(0.3)]))
    assert not [r for r in d.held if r.priority.name == "FINAL"]
    d.session.set_early_finals(True)
    d.feed(silence(0.4))  # endpoint: the one final is decoded the ordinary way
    d.answer_all()
    assert texts(d.finals) == ["w0 w1 w2"]
    assert [r.priority.name for r in d.requests].count("FINAL") == 1


def test_words_are_never_placed_before_the_last_final_word():
    from earmark.core.events import Priority, Recognition, RecognitionRequest, Word

    session = StreamSession(config())
    session._last_word_end = 2400  # an agreed word ran to here, past the request below
    request = RecognitionRequest(1, Priority.FINAL, 0, np.zeros(2188, np.float32))
    got = session._place_words(request, Recognition((Word(" a", 2000, 2188, 0.6),)))
    assert got == ([], True)  # clamped to 2188 it would have come before the word ending at 2400
    session._last_word_end = 1000
    kept, _ = session._place_words(request, Recognition((Word(" a", 1500, 1800, 0.6),)))
    assert [(w.start_sample, w.end_sample) for w in kept] == [(1500, 1800)]
