"""The same backend and batching on CUDA (float16). Run with `pytest -m gpu` on a GPU machine."""

import numpy as np
import pytest

from earmark_eval import wer

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_backend():
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        pytest.skip("no CUDA device visible to CTranslate2")
    from earmark.inference.whisper import WhisperBackend

    backend = WhisperBackend(None, device="auto")
    assert backend.device == "cuda" and backend.compute_type == "float16"
    return backend


def test_cuda_batch_matches_single_decodes(gpu_backend, speak):
    from earmark.inference.whisper import DecodeOptions

    texts = ["I would like to order a large pizza with extra cheese.",
             "Thank you very much for your help with this project."]
    audios = [speak(t).astype(np.float32) / 32768 for t in texts]
    batch = gpu_backend.transcribe_batch(audios, [DecodeOptions(5)] * 2)
    for text, audio, result in zip(texts, audios, batch, strict=True):
        single = gpu_backend.transcribe(audio, DecodeOptions(5))
        assert [w.text for w in single.words] == [w.text for w in result.words]
        assert wer([text], [" ".join(w.text for w in result.words)]) < 0.3
