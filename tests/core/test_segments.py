"""Stream-job segments: every word in exactly one 5 s segment, segments only once settled."""

from __future__ import annotations

import pytest

from earmark.core.events import Word
from earmark.core.segments import SegmentAssembler

S = 16000


def w(text: str, start_s: float, end_s: float) -> Word:
    return Word(text, int(start_s * S), int(end_s * S), 0.9)


def test_words_go_to_the_segment_holding_their_midpoint() -> None:
    a = SegmentAssembler(5 * S)
    a.receive_words([w("one", 1, 2), w("straddle", 4.6, 5.2), w("late", 4.8, 5.6),
                     w("two", 7, 8)])
    a.receive_settled(4 * S)
    assert a.segments_to_send() == []  # nothing is settled past 5 s yet
    a.receive_settled(11 * S)
    segs = a.segments_to_send()
    assert [s.index for s in segs] == [0, 1]
    assert segs[0].text == "one straddle" and segs[1].text == "late two"
    assert (segs[1].start_sample, segs[1].end_sample) == (5 * S, 10 * S)
    # "late" belongs to segment 1 but starts in segment 0: its audio overhangs there.
    assert [x.text for x in segs[0].overhang] == ["late"] and segs[1].overhang == ()


def test_silence_still_gives_empty_segments_in_order() -> None:
    a = SegmentAssembler(5 * S)
    a.receive_settled(16 * S)
    assert [(s.index, s.words) for s in a.segments_to_send()] == [(0, ()), (1, ()), (2, ())]


def test_end_flushes_a_partial_last_segment_with_every_word() -> None:
    a = SegmentAssembler(5 * S)
    a.receive_words([w("a", 1, 2), w("b", 6, 7)])
    a.receive_end(7 * S)
    segs = a.segments_to_send()
    assert [(s.index, s.text, s.end_sample) for s in segs] == [(0, "a", 5 * S),
                                                               (1, "b", 7 * S)]
    a.receive_end(7 * S)  # ending twice adds nothing
    assert a.segments_to_send() == []


def test_a_resumed_stream_numbers_on_and_shifts_its_times() -> None:
    a = SegmentAssembler(5 * S, first_index=4, offset_samples=20 * S)
    a.receive_words([w("again", 1, 2)])
    a.receive_settled(5 * S)
    [seg] = a.segments_to_send()
    assert seg.index == 4 and seg.start_sample == 20 * S
    assert seg.words[0].start_sample == 21 * S


def test_segment_length_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SegmentAssembler(0)


def test_a_deadline_sends_a_segment_with_what_is_final_and_late_words_go_next() -> None:
    a = SegmentAssembler(5 * S, deadline_s=1.0)
    a.receive_words([w("one", 1, 2), w("two", 3, 3.5)])
    a.receive_settled(3 * S, 5 * S, at_s=100.0)  # the audio reaches 5 s at t = 100
    a.receive_settled(3 * S, int(5.9 * S), at_s=100.9)  # talk goes on, nothing settles
    assert a.segments_to_send() == []  # the deadline (t = 101) has not come
    a.receive_settled(int(3.5 * S), 6 * S, at_s=101.0)
    [first] = a.segments_to_send()
    assert first.index == 0 and first.text == "one two"
    assert first.complete_until == int(3.5 * S)  # a resumed run must start there
    # Final only now: "three" and "four" (midpoints in segment 0) lead segment 1, in order.
    a.receive_words([w("three", 4, 4.6), w("four", 4.7, 5.3), w("five", 6, 7)])
    a.receive_settled(11 * S, 11 * S, at_s=106.0)
    [second] = a.segments_to_send()
    assert second.index == 1 and second.text == "three four five"
    assert (second.start_sample, second.end_sample) == (5 * S, 10 * S)
    assert second.complete_until == 10 * S
    # Settling sends at once, before any deadline.
    a.receive_words([w("six", 12, 13)])
    a.receive_settled(15 * S, 15 * S, at_s=106.1)
    assert [s.text for s in a.segments_to_send()] == ["six"]


def test_the_deadline_runs_on_the_wall_clock_not_on_audio_read_ahead() -> None:
    # A file is read faster than real time: 20 s of audio in 0.5 s must not cut 4 segments
    # before their finals arrive.
    a = SegmentAssembler(5 * S, deadline_s=1.0)
    a.receive_settled(0, 20 * S, at_s=50.0)
    a.receive_settled(2 * S, 30 * S, at_s=51.5)
    assert a.segments_to_send() == []  # 1.5 s waited, but the audio ran 10-25 s ahead
    a.receive_words([w("one", 1, 2), w("two", 5.5, 6)])
    a.receive_settled(7 * S, 30 * S, at_s=52.0)
    assert [s.text for s in a.segments_to_send()] == ["one"]  # settled; 1 still waits


def test_a_straddling_word_not_yet_sent_moves_the_resume_point_back() -> None:
    a = SegmentAssembler(5 * S)
    a.receive_words([w("one", 1, 2), w("across", 4.8, 5.6)])
    a.receive_settled(6 * S)
    [seg] = a.segments_to_send()
    assert seg.text == "one" and seg.complete_until == int(4.8 * S)
    # The resumed run starts there: its words before 5 s lead the next segment.
    b = SegmentAssembler(5 * S, first_index=1, offset_samples=seg.complete_until)
    b.receive_words([w("across", 0, 0.8), w("more", 2, 3)])
    b.receive_settled(6 * S)
    [nxt] = b.segments_to_send()
    assert nxt.index == 1 and nxt.text == "across more"
    assert nxt.words[0].start_sample == int(4.8 * S)


def test_without_a_deadline_a_segment_waits_for_its_words() -> None:
    a = SegmentAssembler(5 * S)
    a.receive_words([w("one", 1, 2)])
    a.receive_settled(3 * S, 60 * S, at_s=1000.0)
    assert a.segments_to_send() == []
    with pytest.raises(ValueError):
        SegmentAssembler(5 * S, deadline_s=-1)


def test_the_open_segment_is_its_finals_then_the_interim_words_after_them() -> None:
    a = SegmentAssembler(5 * S, first_index=2, offset_samples=10 * S)
    a.receive_words([w("one", 1, 1.5)])  # stream time 11-11.5 s: segment 2
    interim = [w("one", 1, 1.5), w("two", 2, 2.5), w("later", 6, 6.5)]  # "later": segment 3
    seg = a.open_segment(interim)
    assert (seg.index, seg.start_sample, seg.end_sample) == (2, 10 * S, 15 * S)
    assert seg.text == "one two"  # the final "one" once, then what is not final yet
    assert a.segments_to_send() == [] and a.open_segment([]).text == "one"  # nothing consumed


def test_the_last_segment_reaches_its_last_word() -> None:
    a = SegmentAssembler(5 * S)
    a.receive_words([w("late", 2.10, 2.188)])  # flushed at the stop, past the count
    a.receive_end(int(2.176 * S))
    [seg] = a.segments_to_send()
    assert seg.end_sample == int(2.188 * S) and seg.text == "late"
