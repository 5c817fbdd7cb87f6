"""Pulling live URLs: real FFmpeg-made media served on loopback by real servers."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import websockets

from earmark_eval import wer
from tests.conftest import free_port, running_server, silence_pcm
from tests.e2e.client import stream

SENTENCES = ["I would like to order a large pizza with extra cheese.",
             "Thank you very much for your help with this project."]
TEXT = " ".join(SENTENCES)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg is missing: run `make setup`")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory, speak):
    root = tmp_path_factory.mktemp("media")
    pcm = np.concatenate([silence_pcm(0.5), speak(SENTENCES[0]), silence_pcm(1.0),
                          speak(SENTENCES[1]), silence_pcm(1.5)])
    (root / "speech.raw").write_bytes(pcm.tobytes())
    raw = ["-f", "s16le", "-ar", "16000", "-ac", "1", "-i", str(root / "speech.raw")]
    video = ["-f", "lavfi", "-i", "testsrc=size=640x360:rate=15"]
    ffmpeg(*video, *raw, "-shortest", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart",
           str(root / "video.mp4"))
    ffmpeg(*video, "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           str(root / "silent_video.mp4"))
    # An HLS master playlist: a 640x360 video+audio variant and a low-bandwidth audio variant.
    hls = root / "hls"
    hls.mkdir()
    ffmpeg(*video, *raw, "-shortest", "-map", "0:v", "-map", "1:a", "-map", "1:a",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v:0", "800k",
           "-c:a", "aac", "-b:a:0", "96k", "-b:a:1", "48k", "-f", "hls", "-hls_time", "2",
           "-hls_playlist_type", "vod", "-master_pl_name", "master.m3u8",
           "-var_stream_map", "v:0,a:0 a:1", str(hls / "v%v.m3u8"))
    return root, pcm


@pytest.fixture(scope="module")
def http_base(media):
    root, _ = media
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def pull_server():
    with running_server(url_allow_networks="127.0.0.0/8", url_reconnect_budget_s="3") as srv:
        yield srv


@pytest.fixture(scope="module")
def socket_wer(pull_server, media):
    """WER of the same audio sent over the socket: the bar every pulled source must meet."""
    _, pcm = media
    session = asyncio.run(stream(pull_server.ws, pcm, interim_results=False))
    return wer([TEXT], [session.final_text])


def within_socket(text: str, socket_wer: float) -> bool:
    return wer([TEXT], [text]) <= socket_wer + 0.02


async def pull(server, url: str, **params) -> tuple[list[dict], int | None]:
    query = urllib.parse.urlencode({"url": url, "interim_results": "false", **params})
    messages: list[dict] = []
    async with websockets.connect(f"{server.ws}/v1/listen?{query}") as ws:
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        return messages, ws.close_code


def final_text(messages: list[dict]) -> str:
    return " ".join(m["channel"]["alternatives"][0]["transcript"] for m in messages
                    if m.get("type") == "Results" and m["is_final"])


def states(messages: list[dict]) -> list[str]:
    return [m["state"] for m in messages if m.get("type") == "SourceStatus"]


async def test_http_mp4_with_video_matches_the_socket_path(pull_server, http_base, socket_wer):
    messages, code = await pull(pull_server, f"{http_base}/video.mp4")
    assert code == 1000 and states(messages) == ["live", "ended"]
    assert messages[-1]["type"] == "Metadata"
    assert within_socket(final_text(messages), socket_wer), final_text(messages)


async def test_hls_master_playlist_with_a_video_variant(pull_server, http_base, socket_wer):
    messages, code = await pull(pull_server, f"{http_base}/hls/master.m3u8")
    assert code == 1000 and "ended" in states(messages)
    assert within_socket(final_text(messages), socket_wer), final_text(messages)


async def test_hls_live_playlist_growing_while_pulled(pull_server, http_base, media,
                                                      socket_wer):
    root, _ = media
    live = root / "live"
    live.mkdir(exist_ok=True)
    writer = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-y", "-re", "-f", "s16le", "-ar", "16000", "-ac", "1",
         "-i", str(root / "speech.raw"), "-c:a", "aac", "-f", "hls", "-hls_time", "1",
         "-hls_list_size", "0", "-hls_flags", "independent_segments",
         str(live / "live.m3u8")])
    try:
        for _ in range(100):  # wait for the first segments to exist
            if (live / "live.m3u8").exists():
                break
            await asyncio.sleep(0.1)
        messages, code = await pull(pull_server, f"{http_base}/live/live.m3u8")
    finally:
        writer.wait(30)
    assert code == 1000, messages[-1:]
    assert within_socket(final_text(messages), socket_wer), final_text(messages)


async def test_rtmp_source_then_killed_publisher_reconnects_then_fails(pull_server, media):
    root, _ = media
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/stream"
    publisher = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "s16le", "-ar", "16000", "-ac", "1",
         "-i", str(root / "speech.raw"), "-c:a", "aac", "-f", "flv", "-listen", "1", url])
    try:
        time.sleep(0.5)  # the publisher listens for one player

        async def kill_midway() -> None:
            await asyncio.sleep(4.5)  # the first sentence has been sent
            publisher.kill()

        killer = asyncio.create_task(kill_midway())
        messages, code = await pull(pull_server, url)
        await killer
    finally:
        publisher.kill()
        publisher.wait()
    got = states(messages)
    assert got[0] == "live" and "reconnecting" in got and got[-1] == "failed", got
    assert messages[-1]["type"] == "Error" and "source failed" in messages[-1]["description"]
    assert code == 1008
    assert wer([SENTENCES[0]], [final_text(messages)]) < 0.3, final_text(messages)


async def test_source_without_audio_gets_a_clear_error(pull_server, http_base):
    messages, code = await pull(pull_server, f"{http_base}/silent_video.mp4")
    assert code == 1008 and states(messages) == ["failed"]
    assert "no audio stream" in messages[-1]["description"]


@pytest.mark.parametrize("url", ["http://10.1.2.3/a.mp3", "http://169.254.169.254/latest",
                                 "file:///etc/passwd", "concat:a|b", "http://[::1]/x.mp3"])
async def test_private_addresses_and_other_schemes_are_refused(server, url):
    query = urllib.parse.urlencode({"url": url})
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(f"{server.ws}/v1/listen?{query}"):
            pass
    assert err.value.response.status_code == 400
    body = json.loads(err.value.response.body)
    assert body["param"] == "url"


def test_media_files_exist(media):
    root, _ = media
    assert (root / "hls" / "master.m3u8").exists() and Path(root / "video.mp4").stat().st_size


def _system_python_has_gstreamer_rtsp() -> bool:
    probe = ("import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer")
    try:
        return subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _system_python_has_gstreamer_rtsp(),
                    reason="gst-rtsp-server for the system Python is missing: run `make setup`")
@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_rtsp_source(pull_server, media, transport, socket_wer):
    root, _ = media
    wav = root / "speech.wav"
    if not wav.exists():
        ffmpeg("-f", "s16le", "-ar", "16000", "-ac", "1", "-i", str(root / "speech.raw"),
               str(wav))
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", str(Path(__file__).with_name("rtsp_server.py")),
                               str(port), str(wav)], stdout=subprocess.PIPE, text=True)
    audio_s = (wav.stat().st_size - 44) / 32000

    async def stop_after_one_play() -> None:
        await asyncio.sleep(audio_s + 1.0)
        server.kill()

    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        stopper = asyncio.create_task(stop_after_one_play())
        messages, code = await pull(pull_server, f"rtsp://127.0.0.1:{port}/speech",
                                    rtsp_transport=transport)
        await stopper
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    # At the end of the file the RTSP server ends the session; a live source that stops is
    # retried (this server plays the file again) until the server is gone: then it fails.
    got = states(messages)
    assert got[0] == "live" and "reconnecting" in got and got[-1] == "failed", got
    assert code == 1008
    first_play = " ".join(final_text(messages).split()[: len(TEXT.split())])
    assert within_socket(first_play, socket_wer), final_text(messages)
