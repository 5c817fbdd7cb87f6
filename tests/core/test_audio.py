import numpy as np
import pytest

from earmark.core.audio import AudioBuffer, PcmDecoder, WindowFramer
from earmark.errors import BadAudio


def test_linear16_to_float():
    pcm = np.array([0, 16384, -32768], dtype="<i2").tobytes()
    out = PcmDecoder(encoding="linear16", sample_rate=16000, channels=1).decode(pcm)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.5, -1.0])


def test_odd_length_frame_is_bad_audio():
    with pytest.raises(BadAudio, match="not a whole number"):
        PcmDecoder(encoding="linear16", sample_rate=16000, channels=1).decode(b"\x00\x01\x02")


def test_stereo_frame_must_hold_whole_sample_pairs():
    with pytest.raises(BadAudio):
        PcmDecoder(encoding="linear16", sample_rate=16000, channels=2).decode(b"\x00" * 6)


def test_channels_are_averaged():
    pcm = np.array([[1000, 3000], [-2000, 0]], dtype="<i2").tobytes()
    out = PcmDecoder(encoding="linear16", sample_rate=16000, channels=2).decode(pcm)
    np.testing.assert_allclose(out * 32768, [2000, -1000])


def test_f32_nan_and_inf_are_neutralised():
    pcm = np.array([np.nan, np.inf, -np.inf, 0.25, 7.0], dtype="<f4").tobytes()
    out = PcmDecoder(encoding="f32", sample_rate=16000, channels=1).decode(pcm)
    np.testing.assert_allclose(out, [0.0, 1.0, -1.0, 0.25, 1.0])


def test_streaming_resample_matches_one_shot_and_keeps_length():
    rate = 48000
    t = np.arange(rate * 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    pcm = (tone * 32767).astype("<i2").tobytes()
    chunked = PcmDecoder(encoding="linear16", sample_rate=rate, channels=1)
    parts = [chunked.decode(pcm[i : i + 1234 * 2]) for i in range(0, len(pcm), 1234 * 2)]
    parts.append(chunked.flush())
    streamed = np.concatenate(parts)
    assert abs(len(streamed) - 32000) <= 1
    whole = PcmDecoder(encoding="linear16", sample_rate=rate, channels=1)
    one_shot = np.concatenate([whole.decode(pcm), whole.flush()])
    np.testing.assert_allclose(streamed, one_shot, atol=1e-4)
    # The 440 Hz tone survives: its spectrum peaks at 440 Hz at the new rate.
    spectrum = np.abs(np.fft.rfft(streamed[:16000]))
    assert abs(np.argmax(spectrum) - 440) <= 1


def test_framer_hands_out_whole_windows_and_pads_the_tail():
    framer = WindowFramer(512)
    assert len(framer.push(np.ones(700, dtype=np.float32))) == 512
    assert len(framer.push(np.ones(300, dtype=np.float32))) == 0
    tail = framer.flush()
    assert len(tail) == 512 and tail[:488].all() and not tail[488:].any()
    assert len(framer.flush()) == 0


def test_audio_buffer_slices_by_absolute_index_and_trims():
    buf = AudioBuffer()
    buf.append(np.arange(10, dtype=np.float32))
    buf.append(np.arange(10, 20, dtype=np.float32))
    np.testing.assert_array_equal(buf.slice(8, 12), [8, 9, 10, 11])
    buf.trim_before(15)
    assert buf.start_sample == 15
    np.testing.assert_array_equal(buf.slice(15, 17), [15, 16])
    with pytest.raises(IndexError):
        buf.slice(10, 16)


def test_one_channel_of_interleaved_frames_can_be_kept():
    pcm = np.array([[1000, -2000], [3000, -4000]], dtype="<i2").tobytes()
    left = PcmDecoder(encoding="linear16", sample_rate=16000, channels=2, channel=0)
    right = PcmDecoder(encoding="linear16", sample_rate=16000, channels=2, channel=1)
    assert np.allclose(left.decode(pcm) * 32768, [1000, 3000])
    assert np.allclose(right.decode(pcm) * 32768, [-2000, -4000])
    with pytest.raises(ValueError):
        PcmDecoder(encoding="linear16", sample_rate=16000, channels=2, channel=2)


async def test_interims_collapse_per_channel_only():
    from earmark.live.outbox import Outbox

    box = Outbox(10)
    box.put(b"a0", interim=True, channel=0)
    box.put(b"a1", interim=True, channel=1)
    box.put(b"b1", interim=True, channel=1)  # replaces a1: same channel
    box.put(b"b0", interim=True, channel=0)  # a0 is not last, so it stays
    got = []
    for _ in range(3):
        got.append(await box.get())
        box.sent()
    assert got == [b"a0", b"b1", b"b0"]
