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
