"""Property tests: every parser of client input, fed anything, either accepts it or raises
the documented error (an EarmarkError, or pydantic's ValidationError for JSON bodies that
FastAPI turns into a 400). Nothing else may escape: anything else would be a 500 or a 1011."""

from __future__ import annotations

import base64
import io
import struct
import wave

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from earmark.api.sync_routes import StreamRequest, decode_audio
from earmark.core.audio import PcmDecoder
from earmark.core.languages import ModelLanguages
from earmark.dialects.chatsight import TagSessionRequest
from earmark.dialects.deepgram import parse_control, parse_live_options
from earmark.dialects.file_job_options import parse_job_options
from earmark.dialects.stream_jobs import StreamStartRequest, stream_options
from earmark.errors import EarmarkError

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
ENGLISH = ModelLanguages("en", False, frozenset({"en"}))
MULTI = ModelLanguages("en", True, frozenset({"en", "de", "fr", "ja"}))

LIVE_PARAMS = ["encoding", "sample_rate", "channels", "interim_results", "endpointing",
               "utterance_end_ms", "vad_events", "language", "model", "keywords", "keyterm",
               "punctuate", "smart_format", "tag", "tagging", "url", "url_headers", "redact",
               "replace", "profanity_filter", "sentiment", "detect_entities", "diarize",
               "multichannel", "detect_language", "token", "x"]
tricky_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "1e9", "nan", "inf", "true", "false", "None", "8000",
                     "48000", "16000", "linear16", "f32", "en", "auto", "\x00", "%00", "ü" * 9,
                     "a" * 5000, "1" * 400, "http://127.0.0.1/x", '{"a":', "[]"]))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | tricky_text,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25)


@FUZZ
@given(params=st.lists(st.tuples(st.sampled_from(LIVE_PARAMS), tricky_text), max_size=8),
       multilingual=st.booleans())
def test_live_query_parameters(params, multilingual):
    try:
        options = parse_live_options(params, multilingual=multilingual)
    except EarmarkError as err:
        assert err.http_status == 400 and err.message
        return
    assert 8000 <= options.sample_rate <= 48000 and options.channels >= 1


@FUZZ
@given(text=st.one_of(st.text(max_size=300), JSON.map(lambda v: __import__("json").dumps(v))))
def test_control_messages(text):
    try:
        assert parse_control(text) in ("KeepAlive", "Finalize", "CloseStream")
    except EarmarkError as err:
        assert err.close_code in (1008, 1009)


@FUZZ
@given(frames=st.lists(st.binary(max_size=4000), max_size=6),
       encoding=st.sampled_from(["linear16", "f32"]),
       rate=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]),
       channels=st.integers(1, 8))
def test_pcm_frames(frames, encoding, rate, channels):
    decoder = PcmDecoder(encoding=encoding, sample_rate=rate, channels=channels)
    total = 0
    for frame in frames:
        try:
            out = decoder.decode(frame)
        except EarmarkError as err:
            assert err.close_code == 1008
            continue
        assert out.dtype == np.float32 and np.all(np.isfinite(out))
        assert np.all(np.abs(out) <= 1.5)  # HQ resampling may ring a little past full scale
        total += len(out)
    # Never more output than the input could make (bounded allocation).
    assert total <= sum(len(f) for f in frames) * 16000 / rate + 64


def _wav(rate: int, channels: int, width: int, frames: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


@FUZZ
@given(rate=st.integers(1, 200_000), channels=st.integers(1, 4), width=st.integers(1, 4),
       frames=st.binary(max_size=2000), cut=st.integers(0, 60), flip=st.binary(max_size=8))
def test_wav_headers(rate, channels, width, frames, cut, flip):
    data = bytearray(_wav(rate, channels, width, frames))
    data[cut:cut + len(flip)] = flip  # corrupt the header here and there
    try:
        audio = decode_audio(bytes(data))
    except EarmarkError as err:
        assert err.http_status == 400
        return
    assert audio.dtype == np.float32 and len(audio) > 0


@FUZZ
@given(header=st.binary(min_size=44, max_size=44), body=st.binary(max_size=200))
def test_raw_riff_bytes(header, body):
    data = b"RIFF" + struct.pack("<I", len(body) + 36) + b"WAVE" + header[12:] + body
    try:
        decode_audio(data)
    except EarmarkError as err:
        assert err.http_status == 400


@FUZZ
@given(body=JSON, b64=st.one_of(st.binary(max_size=64).map(
    lambda b: base64.b64encode(b).decode()), tricky_text))
def test_sync_bodies_and_base64(body, b64):
    if isinstance(body, dict):
        body = {**body, "audio_data": b64}
    try:
        StreamRequest.model_validate(body)
    except ValidationError:
        pass
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        return
    try:
        decode_audio(raw)
    except EarmarkError as err:
        assert err.http_status == 400


@FUZZ
@given(body=JSON)
def test_stream_job_and_tag_session_bodies(body):
    try:
        request = StreamStartRequest.model_validate(body)
    except ValidationError:
        pass
    else:
        try:
            stream_options(request, MULTI)
        except EarmarkError as err:
            assert err.http_status == 400
    try:
        TagSessionRequest.model_validate(body)
    except ValidationError:
        pass


class MultiDict(dict):
    def getlist(self, name: str) -> list[str]:
        value = self.get(name)
        return [] if value is None else [value]


JOB_PARAMS = ["name", "webhookUrl", "customVocabulary", "languageCode", "channelMetadata",
              "detectEntities", "customEntities", "trackers", "enableSpeakerDiarization",
              "diarizationSpeakerCount", "enableSeparateRecognitionPerChannel",
              "enableSummary", "conversationType", "mode", "x",
              "customVocabulary[0]", "customVocabulary[]", "channelMetadata[0][channel]",
              "channelMetadata[0][speaker][name]", "trackers[0][name]", "x[y]"]


@FUZZ
@given(query=st.dictionaries(st.sampled_from(JOB_PARAMS),
                             st.one_of(tricky_text, JSON.map(
                                 lambda v: __import__("json").dumps(v))), max_size=6),
       multilingual=st.booleans())
def test_file_job_query_options(query, multilingual):
    try:
        parse_job_options(MultiDict(query), MULTI if multilingual else ENGLISH)
    except EarmarkError as err:
        assert err.http_status == 400


@pytest.mark.parametrize("size", [0, 1, 2, 3, 44, 1000])
def test_truncated_wavs(size):
    data = _wav(16000, 1, 2, b"\x01\x00" * 800)[:size]
    try:
        decode_audio(data)
    except EarmarkError as err:
        assert err.http_status == 400


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    import subprocess

    folder = tmp_path_factory.mktemp("seeds")
    out = []
    for name, extra in {"a.wav": [], "a.mp3": ["-c:a", "libmp3lame"], "a.flac": [],
                        "a.ogg": ["-c:a", "libopus"]}.items():
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "sine=frequency=300:duration=0.3", "-ar", "16000", *extra,
                        str(folder / name)], check=True)
        out.append((folder / name).read_bytes())
    return out


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 3), at=st.integers(0, 4000), flip=st.binary(min_size=1, max_size=16),
       cut=st.one_of(st.none(), st.integers(0, 8000)))
def test_uploaded_files_decode_or_are_bad_audio(seed_files, tmp_path, which, at, flip, cut):
    # The decoder child's own functions, in-process: the child turns Refused into BadAudio.
    from earmark.filejobs.decoder import Refused, decode, probe

    data = bytearray(seed_files[which])
    data[at:at + len(flip)] = flip
    if cut is not None:
        del data[cut:]
    path = tmp_path / "upload"
    path.write_bytes(bytes(data))
    try:
        probe(str(path))
        got = decode(str(path), str(tmp_path / "pcm"), True, 5.0)
    except Refused:
        return
    assert 1 <= got["channels"] <= 8 and got["samples"] <= 5 * 16000 + 16000
    assert (tmp_path / "pcm").stat().st_size == got["channels"] * got["samples"] * 2
