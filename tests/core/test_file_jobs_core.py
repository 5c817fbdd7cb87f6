"""The pure parts of file jobs: chunk planning, sentence messages, job states, retry delays."""

from __future__ import annotations

from earmark.core import WINDOW_SAMPLES
from earmark.core.chunking import Chunk, plan_chunks, speech_regions
from earmark.core.events import Word
from earmark.core.jobs import JobStatus, can_move, gives_up, retry_delay_s
from earmark.core.messages import merge_channels, sentences
from earmark.core.segmenter import SegmenterConfig

W = WINDOW_SAMPLES
CFG = SegmenterConfig(silence_samples=16 * W, pad_samples=2 * W)


def probs(*runs: tuple[float, int]) -> list[float]:
    """(probability, windows) runs -> a probability per window."""
    return [p for p, n in runs for _ in range(n)]


def test_regions_are_padded_and_never_overlap() -> None:
    regions = speech_regions(probs((0.0, 50), (0.9, 40), (0.0, 60), (0.9, 30), (0.0, 5)), CFG)
    assert len(regions) == 2
    assert regions[0].start_sample == 48 * W and regions[0].end_sample == 92 * W
    assert regions[1].start_sample >= regions[0].end_sample
    assert regions[1].end_sample == 185 * W  # open at the end of the file: ends there


def test_close_regions_pack_into_one_chunk_far_ones_do_not() -> None:
    p = probs((0.9, 100), (0.0, 40), (0.9, 100), (0.0, 400), (0.9, 100))
    chunks = plan_chunks(p, CFG, max_chunk_samples=400 * W, max_gap_samples=60 * W)
    assert len(chunks) == 2
    assert chunks[0].start_sample == 0 and chunks[0].end_sample >= 240 * W
    assert chunks[1].start_sample > 600 * W


def test_long_speech_is_split_at_its_quietest_window_within_the_limit() -> None:
    p = probs((0.9, 300), (0.4, 1), (0.9, 300))  # one dip above neg_threshold: one region
    chunks = plan_chunks(p, CFG, max_chunk_samples=400 * W, max_gap_samples=0)
    assert len(chunks) == 2
    assert chunks[0].end_sample == 300 * W == chunks[1].start_sample
    assert all(c.samples <= 400 * W for c in chunks)


def test_no_speech_no_chunks() -> None:
    assert plan_chunks(probs((0.1, 500)), CFG, max_chunk_samples=100 * W,
                       max_gap_samples=0) == []


def word(text: str, start_s: float, end_s: float) -> Word:
    return Word(text, int(start_s * 16000), int(end_s * 16000), 0.9)


def test_sentences_end_at_punctuation_pauses_and_chunk_ends() -> None:
    chunk1 = [word(" Hello", 0, 0.5), word(" there.", 0.5, 1), word(" Mr.", 1.1, 1.3),
              word(" Smith", 1.3, 1.6), word(" waved", 1.6, 2), word(" then", 5, 5.3),
              word(" left", 5.3, 5.6)]
    chunk2 = [word(" New", 10, 10.3), word(" chunk", 10.3, 10.6)]
    got = sentences([chunk1, chunk2], max_pause_samples=16000)
    assert [m.text for m in got] == ["Hello there.", "Mr. Smith waved", "then left",
                                     "New chunk"]
    assert got[0].start_sample == 0 and got[0].end_sample == 16000


def test_channels_merge_by_start_time() -> None:
    left = sentences([[word(" a.", 0, 1), word(" c.", 4, 5)]], channel=1)
    right = sentences([[word(" b.", 2, 3)]], channel=2)
    merged = merge_channels([left, right])
    assert [(m.channel, m.text) for m in merged] == [(1, "a."), (2, "b."), (1, "c.")]


def test_job_states_only_move_forward() -> None:
    assert can_move(JobStatus.SCHEDULED, JobStatus.IN_PROGRESS)
    assert can_move(JobStatus.SCHEDULED, JobStatus.FAILED)
    assert can_move(JobStatus.IN_PROGRESS, JobStatus.COMPLETED)
    assert not can_move(JobStatus.COMPLETED, JobStatus.FAILED)
    assert not can_move(JobStatus.FAILED, JobStatus.IN_PROGRESS)
    assert not can_move(JobStatus.IN_PROGRESS, JobStatus.SCHEDULED)
    assert JobStatus.COMPLETED.final and not JobStatus.IN_PROGRESS.final


def test_retry_delays_double_up_to_the_cap_and_give_up_after_the_window() -> None:
    delays = [retry_delay_s(n, base_s=2, cap_s=60) for n in range(1, 9)]
    assert delays == [2, 4, 8, 16, 32, 60, 60, 60]
    assert retry_delay_s(10_000, base_s=2, cap_s=600) == 600
    assert not gives_up(3599, window_s=3600) and gives_up(3600, window_s=3600)


def test_chunk_samples() -> None:
    assert Chunk(10, 25).samples == 15


def test_a_chunk_that_skipped_a_region_is_decoded_region_by_region():
    from earmark.core.chunking import unheard

    sr = 16000
    regions = [Chunk(0, 3 * sr), Chunk(5 * sr, 8 * sr), Chunk(10 * sr, 10 * sr + sr),
               Chunk(12 * sr, 15 * sr)]
    chunk = Chunk(0, 15 * sr)
    said = [Word(f"w{k}", int(t * sr), int(t * sr) + 4000, 0.9)
            for k, t in enumerate((0.5, 1.0, 1.5, 2.0, 10.2, 12.5, 13.0, 13.5, 14.0))]
    # The second region's 3 s got one word, stretched over it by the alignment.
    stretched = [*said[:4], Word("so", int(4.5 * sr), int(7.5 * sr), 0.9), *said[4:]]
    assert unheard(regions, stretched, chunk) == regions
    # Each region heard (the 1 s one may be quiet: too short to judge).
    heard = sorted([*said, *(Word("x", int(t * sr), int(t * sr) + 4000, 0.9)
                             for t in (5.5, 6.5))], key=lambda w: w.start_sample)
    assert unheard(regions, heard, chunk) == []
    # A chunk of one region was decoded alone already.
    assert unheard(regions[:1], [], Chunk(0, 3 * sr)) == []
