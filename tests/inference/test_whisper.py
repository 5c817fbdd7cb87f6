"""The real bundled tiny.en model on synthetic speech; window and loop helpers."""

import numpy as np
import pytest

from earmark.core.events import Word
from earmark.inference.whisper import (
    DecodeOptions,
    WhisperBackend,
    cut_repeats,
    resolve_model,
    window_frames,
)
from earmark_eval import wer


@pytest.fixture(scope="module")
def backend():
    return WhisperBackend(None, device="cpu", cpu_threads=2)


def test_window_is_padded_bucketed_and_capped():
    assert window_frames(16000 * 3, bucket_s=5, min_pad_s=2, min_window_s=10) == 1000
    assert window_frames(16000 * 9, bucket_s=5, min_pad_s=2, min_window_s=10) == 1500
    assert window_frames(16000 * 29, bucket_s=5, min_pad_s=2, min_window_s=10) == 3000


def test_cut_repeats_keeps_one_copy_of_a_loop():
    words = [Word(t, i, i + 1, 1.0) for i, t in enumerate(
        "a b c d e f g b c d e f g b c".split())]
    assert [w.text for w in cut_repeats(words)] == "a b c d e f g".split()
    short = [Word(t, i, i + 1, 1.0) for i, t in enumerate("we will we will rock you".split())]
    assert cut_repeats(short) == short


def test_cut_repeats_keeps_one_copy_of_a_short_phrase_said_three_times():
    # tiny.en on a 1.8 s final with endpointing=200 (issue 26).
    said = ("produced the block books produced the block books produced the block books "
            "produced the").split()
    words = [Word(t, i * 2000, i * 2000 + 1800, 1.0) for i, t in enumerate(said)]
    assert [w.text for w in cut_repeats(words)] == "produced the block books".split()
    one = [Word(t, i, i + 1, 1.0) for i, t in enumerate("so so so so so far".split())]
    assert [w.text for w in cut_repeats(one)] == ["so"]
    # Twice is speech, and so is a word said three times.
    for text in ("we will we will rock you", "no no no not that", "the block books the block"):
        words = [Word(t, i, i + 1, 1.0) for i, t in enumerate(text.split())]
        assert cut_repeats(words) == words


def test_cut_repeats_drops_a_copy_cut_short_by_the_end_of_the_decode():
    # tiny.en on a piece cut at a 128 ms pause (capacity.py's continuous session 0).
    # Its copy's words all lay on the audio's last frame (4.32 s of 4.35 s).
    said = "The invention of movable metal letters in the middle of the 15th century?".split()
    again = "The invention of movable metal letters in the middle of the 15th".split()
    words = [Word(t, i * 4800, i * 4800 + 4000, 1.0) for i, t in enumerate(said)]
    words += [Word(t, 69120, 69120, 1.0) for t in again]
    assert [w.text for w in cut_repeats(words)] == said
    # Speech that says the passage again (a file of repeated sentences) keeps it, and so do
    # words said again in the middle of a decode.
    words = [Word(t, i * 4800, i * 4800 + 4000, 1.0) for i, t in enumerate(said + again)]
    assert cut_repeats(words) == words
    kept = "the cat sat on the mat the cat sat on a chair today".split()
    words = [Word(t, i, i + 1, 1.0) for i, t in enumerate(kept)]
    assert cut_repeats(words) == words


def test_bundled_model_resolves_to_a_local_folder():
    from pathlib import Path

    assert (Path(resolve_model(None)) / "model.bin").exists()
    with pytest.raises(RuntimeError, match="model.bin"):
        resolve_model("/")


def test_transcribes_speech_with_monotonic_word_times(backend, speak):
    text = "Thank you very much for your help with this project."
    audio = speak(text).astype(np.float32) / 32768
    result = backend.transcribe(audio, DecodeOptions(beam_size=1))
    assert wer([text], [" ".join(w.text for w in result.words)]) < 0.3
    ends = 0
    for w in result.words:
        assert ends <= w.start_sample <= w.end_sample <= len(audio) + 1600
        ends = w.end_sample


def test_silence_and_tiny_input_give_no_words(backend):
    assert backend.transcribe(np.zeros(16000 * 3, np.float32), DecodeOptions()).words == ()
    assert backend.transcribe(np.zeros(100, np.float32), DecodeOptions()).words == ()


def test_a_hyphenated_word_is_one_word_with_both_spans():
    from earmark.inference.whisper import _merge_punctuation

    raw = [[" fat", 0.0, 0.4, 0.9], ["-mutton", 0.4, 0.9, 0.7], [" pieces", 1.0, 1.5, 0.9],
           [" John", 2.0, 2.3, 0.9], ["'s", 2.3, 2.4, 0.8], [" well", 2.7, 3.0, 0.9]]
    got = _merge_punctuation(raw)
    assert [w for w, *_ in got] == ["fat-mutton", "pieces", "John's", "well"]
    assert got[0][1:] == (0.0, 0.9, 0.7)  # the first's start, the last's end, the lower prob


def test_one_batch_mixes_vocabularies_and_previous_texts(backend, speak):
    """Sessions with their own keyterms and their own previous text share a batch: CTranslate2
    wants the start token at one position, so the backend groups them (it raised before)."""
    text = "Please call me back after lunch."
    audio = speak(text).astype(np.float32) / 32768
    options = [DecodeOptions(beam_size=1),
               DecodeOptions(beam_size=1, hotwords="Earmark"),
               DecodeOptions(beam_size=1, hotwords="Earmark Deepgram pipecat LiveKit"),
               DecodeOptions(beam_size=1, previous_text="And so, my fellow Americans."),
               DecodeOptions(beam_size=1, hotwords="lunch", previous_text="Hello there.")]
    together = backend.transcribe_batch([audio] * len(options), options)
    for opts, got in zip(options, together, strict=True):
        alone = backend.transcribe(audio, opts)
        assert [w.text for w in got.words] == [w.text for w in alone.words]
        assert got.music_prob == pytest.approx(alone.music_prob, abs=1e-3)
        assert wer([text], [" ".join(w.text for w in got.words)]) < 0.3
