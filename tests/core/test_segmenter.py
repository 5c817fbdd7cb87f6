from earmark.core.segmenter import SegmentEnd, Segmenter, SegmenterConfig, SegmentStart

W = 512
CFG = SegmenterConfig(threshold=0.5, neg_threshold=0.35, min_speech_samples=2 * W,
                      silence_samples=4 * W, pad_samples=W)


def run(probs, cfg=CFG):
    seg = Segmenter(cfg)
    return seg, seg.receive_probs(probs)


def test_start_needs_min_speech_and_is_padded():
    _, events = run([0.0] * 5 + [0.9] * 2)
    assert events == [SegmentStart(5 * W - W)]


def test_single_spike_is_not_speech():
    _, events = run([0.0, 0.9, 0.0, 0.0, 0.9, 0.1])
    assert events == []


def test_end_after_silence_with_pad():
    seg, events = run([0.9] * 4 + [0.1] * 4)
    assert events == [SegmentStart(0), SegmentEnd(4 * W + W)]
    assert not seg.in_speech


def test_hysteresis_keeps_speech_between_thresholds():
    _, events = run([0.9] * 3 + [0.4] * 10)
    assert events == [SegmentStart(0)]


def test_short_pause_does_not_end_speech():
    _, events = run([0.9] * 3 + [0.1] * 3 + [0.9] * 2 + [0.1] * 4)
    assert events == [SegmentStart(0), SegmentEnd(8 * W + W)]


def test_next_region_never_starts_before_the_previous_end():
    _, events = run([0.9] * 3 + [0.0] * 4 + [0.9] * 2)
    first_end = events[1].end_sample
    assert events[2].start_sample >= first_end


def test_force_end_closes_an_open_region_at_now():
    seg, _ = run([0.9] * 3)
    assert seg.force_end() == SegmentEnd(3 * W)
    assert seg.force_end() is None
