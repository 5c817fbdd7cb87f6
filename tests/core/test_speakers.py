"""LiveSpeakers with a scripted clusterer: labels stay put while clusters are renumbered,
interims teach nothing, a count cap maps new clusters to known voices, history is thinned."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from earmark.core.speakers import LiveSpeakers, label_at

A, B, C = np.eye(4, dtype=np.float32)[:3]


def by_first_axis(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """A clusterer that numbers clusters by the axis each vector points along, reversed, so
    its numbering never matches the stream's labels."""
    return (3 - np.argmax(vectors, axis=1)).astype(np.int64)


def test_labels_stay_stable_across_reclustering() -> None:
    s = LiveSpeakers(by_first_axis)
    assert s.receive(np.stack([A, A])) == [0, 0]
    assert s.receive(np.stack([B, B, A])) == [1, 1, 0]
    assert s.receive(np.stack([C])) == [2]
    assert s.receive(np.stack([A, C, B])) == [0, 2, 1]
    assert s.speakers == 3


def test_interims_label_by_nearest_and_learn_nothing() -> None:
    s = LiveSpeakers(by_first_axis)
    assert s.receive(np.stack([B]), learn=False) == [0]  # nobody known yet
    s.receive(np.stack([A, A]))
    s.receive(np.stack([B]))
    assert s.receive(np.stack([B * 0.9 + A * 0.1, C]), learn=False) == [1, 0]
    assert s.speakers == 2  # C was not learnt
    assert s.receive(np.stack([C])) == [2]


def test_a_count_cap_maps_new_clusters_to_the_nearest_known_voice() -> None:
    s = LiveSpeakers(by_first_axis, max_speakers=2)
    s.receive(np.stack([A, A]))
    s.receive(np.stack([B, B]))
    near_a = A * 0.8 + C * 0.6  # points along A: a third cluster, nearer to A than B
    assert s.receive(np.stack([C * 0.5 + A * 0.4, near_a])) == [0, 0]
    assert s.speakers == 2


def test_history_is_thinned_and_old_voices_still_recognised() -> None:
    s = LiveSpeakers(by_first_axis, max_history=10)
    s.receive(np.stack([A] * 6))
    for _ in range(5):
        s.receive(np.stack([B] * 4))
    assert len(s._labels) <= 10
    assert s.receive(np.stack([A])) == [0]


def test_label_at_takes_the_nearest_window() -> None:
    centres = np.array([100, 200, 300])
    assert label_at(centres, [0, 1, 2], 140) == 0
    assert label_at(centres, [0, 1, 2], 160) == 1
    assert label_at(centres, [0, 1, 2], 10_000) == 2
    assert label_at(np.zeros(0, np.int64), [], 5) is None
