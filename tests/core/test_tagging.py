"""The pure tag aggregator: driven with finals and hand-made scores, no model, no clock."""

from __future__ import annotations

from earmark.core.events import TagScore
from earmark.core.tagging import ScoredWindow, TagAggregator, TaggingConfig

S = 16000
WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"


def scores(topics: dict[str, float], moods: dict[str, float] | None = None,
           threshold: float = 0.25) -> ScoredWindow:
    return ScoredWindow(
        tuple(TagScore(n, "topic", v, threshold) for n, v in topics.items()),
        tuple(TagScore(n, "mood", v) for n, v in (moods or {"Relaxed": 0.3}).items()),
        (TagScore("extra words", "keyword", 0.8),),
    )


def names(agg: TagAggregator) -> list[list[str]]:
    return [[t.name for t in ev.tags] for ev in agg.events_to_send()]


def test_too_little_speech_gives_no_tags_and_says_why():
    agg = TagAggregator()
    agg.receive_final("uh yeah okay", 0, 2 * S)
    assert agg.requests_to_send() == []
    (ev,) = agg.events_to_send()
    assert ev.tags == () and ev.reason == "insufficient_speech"
    # Said once, not again for every final of the lull.
    agg.receive_final("hmm right", 6 * S, 7 * S)
    assert agg.events_to_send() == []


def test_enough_speech_is_scored_and_tags_pushed_with_window_times():
    agg = TagAggregator()
    agg.receive_final(WORDS + " fifteen sixteen", S, 8 * S)
    (req,) = agg.requests_to_send()
    assert req.text.startswith("one two") and req.seed_sentence is None
    agg.receive_scores(req.request_id, scores({"Sports": 0.5, "Music": 0.1}))
    (ev,) = agg.events_to_send()
    assert [t.name for t in ev.tags] == ["Sports", "Relaxed"]
    assert (ev.start_sample, ev.end_sample) == (S, 8 * S)
    assert [k.name for k in ev.undocumented] == ["extra words"]
    assert ev.reason is None


def test_one_request_in_flight_and_at_most_one_per_interval():
    agg = TagAggregator(TaggingConfig(min_interval_s=3.0), seed_sentence="a title")
    agg.receive_final(WORDS + " a b", 0, 5 * S)
    (first,) = agg.requests_to_send()
    assert first.seed_sentence == "a title"
    agg.receive_final("more words here", 6 * S, 7 * S)
    agg.receive_final("and more", 9 * S, 10 * S)
    assert agg.requests_to_send() == []  # the first is still being scored
    agg.receive_scores(first.request_id, scores({"Sports": 0.5}))
    (second,) = agg.requests_to_send()  # the newer window, once the first came back
    assert second.text.endswith("and more")
    agg.receive_scores(second.request_id, scores({"Sports": 0.5}))
    agg.receive_final("again", 11 * S, 12 * S)  # within 3 s of audio of the last request
    assert agg.requests_to_send() == [] and agg.waiting
    agg.receive_time(13 * S + 1)
    assert len(agg.requests_to_send()) == 1


def test_hysteresis_keeps_a_tag_hovering_at_its_threshold():
    agg = TagAggregator(TaggingConfig(min_interval_s=0))
    seen = []
    for i, value in enumerate([0.30, 0.24, 0.26, 0.235, 0.27, 0.20]):
        agg.receive_final(WORDS + " x y", i * 10 * S, i * 10 * S + 5 * S)
        (req,) = agg.requests_to_send()
        agg.receive_scores(req.request_id, scores({"Sports": value}))
        seen += names(agg)
    # Enters at 0.30; stays through 0.24 / 0.235 (exit at 0.9 x 0.25 = 0.225); leaves at 0.20.
    assert seen == [["Sports", "Relaxed"], ["Relaxed"]]


def test_topics_far_below_the_best_are_left_out_and_at_most_three():
    agg = TagAggregator()
    agg.receive_final(WORDS + " x y", 0, 5 * S)
    (req,) = agg.requests_to_send()
    agg.receive_scores(req.request_id, scores(
        {"A": 0.60, "B": 0.57, "C": 0.55, "D": 0.54, "E": 0.40}))
    (tags,) = names(agg)
    assert tags == ["A", "B", "C", "Relaxed"]


def test_mood_is_held_unless_clearly_beaten():
    agg = TagAggregator(TaggingConfig(min_interval_s=0))
    moods = [{"Fun": 0.40, "Excited": 0.35}, {"Fun": 0.36, "Excited": 0.40},
             {"Fun": 0.30, "Excited": 0.50}]
    seen = []
    for i, m in enumerate(moods):
        agg.receive_final(WORDS + " x y", i * 10 * S, i * 10 * S + 5 * S)
        (req,) = agg.requests_to_send()
        agg.receive_scores(req.request_id, scores({"Sports": 0.5}, m))
        seen += names(agg)
    assert seen == [["Sports", "Fun"], ["Sports", "Excited"]]


def test_the_window_rolls_over_the_last_minute_of_speech():
    agg = TagAggregator(TaggingConfig(window_s=20, min_interval_s=0))
    for i in range(6):  # six finals of 8 s speech each
        agg.receive_final(f"final{i} " + WORDS, i * 10 * S, i * 10 * S + 8 * S)
        for req in agg.requests_to_send():
            agg.receive_scores(req.request_id, scores({"Sports": 0.5}))
            last = req
    # 20 s of speech holds two 8 s finals (a third would make 24 s)
    assert "final5" in last.text and "final4" in last.text and "final3" not in last.text


def test_a_failed_scoring_keeps_the_tags_and_tries_again():
    agg = TagAggregator(TaggingConfig(min_interval_s=0))
    agg.receive_final(WORDS + " x y", 0, 5 * S)
    (req,) = agg.requests_to_send()
    agg.receive_failure(req.request_id)
    assert agg.events_to_send() == []
    agg.receive_final("later words", 6 * S, 7 * S)
    (retry,) = agg.requests_to_send()
    assert retry.request_id != req.request_id and "later words" in retry.text


def test_stale_scores_are_ignored():
    agg = TagAggregator()
    agg.receive_scores(42, scores({"Sports": 0.9}))
    assert agg.events_to_send() == []
