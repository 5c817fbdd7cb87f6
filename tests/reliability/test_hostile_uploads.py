"""Uploaded files that crashed the server or blew up its memory (issue 27, items 1 and 9).

The decoder runs in a child process (``filejobs/audio_file.py``): a crash there is a failed
job, and it writes 16 kHz int16 to a file that is read back in pieces.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from earmark.errors import BadAudio
from earmark.filejobs import audio_file
from earmark.filejobs.audio_file import decode, probe


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def multichannel(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("multichannel")
    # Channel k carries a tone of amplitude (k + 1) / 20, so rows can be told apart.
    eight = "|".join(f"{(k + 1) / 20}*sin(2*PI*(200+50*{k})*t)" for k in range(8))
    files = {"c8.wav": ["-f", "lavfi", "-i", f"aevalsrc={eight}:s=48000:d=3",
                        "-c:a", "pcm_f32le"],
             "c71.flac": ["-f", "lavfi", "-i", f"aevalsrc={eight}:s=48000:d=3:c=7.1"],
             "c16.wav": ["-f", "lavfi", "-i", "sine=frequency=300:duration=3:sample_rate=48000",
                         "-ac", "16", "-c:a", "pcm_f32le"]}
    for name, args in files.items():
        ffmpeg(*args, str(folder / name))
    return {name: folder / name for name in files}


@pytest.mark.parametrize("name", ["c8.wav", "c71.flac", "c16.wav"])
def test_8_and_16_channel_files_decode_per_channel(multichannel, tmp_path, name):
    path = str(multichannel[name])
    info = probe(path)
    assert info.channels == (16 if name == "c16.wav" else 8)
    audio = decode(path, str(tmp_path / "pcm"), keep_channels=True)
    assert audio.shape == (8, 3 * 16000)  # at most 8 channels are kept
    rms = np.sqrt((audio.array() ** 2).mean(axis=1))
    if name != "c16.wav":
        # each channel is its own, in order (no remix into the wrong rows)
        assert np.allclose(rms, [(k + 1) / 20 / np.sqrt(2) for k in range(8)], rtol=0.05)
    mono = decode(path, str(tmp_path / "mono"), keep_channels=False)
    assert mono.shape == (1, 3 * 16000)
    assert np.array_equal(audio.row(3)[1000:2000], audio.array()[3, 1000:2000])


def test_a_decoder_that_crashes_fails_the_file_not_the_server(monkeypatch, tmp_path):
    monkeypatch.setattr(audio_file, "DECODER_MODULE", "tests.reliability.crashing_decoder")
    with pytest.raises(BadAudio, match="crashed on this file .SIGSEGV"):
        decode("/nonexistent", str(tmp_path / "pcm"), keep_channels=True)
    assert not (tmp_path / "pcm").exists()
    with pytest.raises(BadAudio, match="SIGSEGV"):
        probe("/nonexistent")


def test_an_hour_of_compressed_silence_decodes_in_bounded_memory(tmp_path):
    flac = tmp_path / "silence.flac"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3600", str(flac))
    assert flac.stat().st_size < 1 << 20  # ~640 kB that used to cost +440 MB
    # decode() from a fresh process, so that its children's peak RSS is the decoder's alone
    # (this test process has other children: servers, ffmpeg).
    probe_peak = ("import resource, sys; from earmark.filejobs.audio_file import decode; "
                  "a = decode(sys.argv[1], sys.argv[2], keep_channels=False); "
                  "print(a.samples, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe_peak, str(flac), str(tmp_path / "pcm")],
                         capture_output=True, text=True, check=True).stdout.split()
    samples, child_peak_mb = int(out[0]), int(out[1]) / 1024
    assert samples == 3600 * 16000
    assert (tmp_path / "pcm").stat().st_size == samples * 2  # on disk, as int16
    assert child_peak_mb < 250, child_peak_mb  # measured: 67 MB
    audio = audio_file.DecodedAudio(str(tmp_path / "pcm"), 1, samples)
    assert audio.read(0, 16000 * 16).shape == (1, 16000 * 16)  # read back 16 s at a time
