"""Send an audio file to Earmark over WebRTC (aiortc) and print interim and final results.

    python client_examples/webrtc_file.py speech.wav [--server http://127.0.0.1:8000]
        [--key KEY] [--param endpointing=300 --param keyterm=Earmark]

The file is decoded by PyAV and sent in real time as an Opus track; results come back on a
data channel labelled "earmark" in the same JSON messages as the /v1/listen socket. When the
file ends the client sends CloseStream, prints Metadata, and hangs up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer


async def stream_file(
    server: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    key: str | None = None,
    on_message: Callable[[dict[str, Any]], None] = lambda m: None,
    timeout_s: float = 300.0,
) -> list[dict[str, Any]]:
    """Streams ``path`` in real time; returns every message received, Metadata last."""
    messages: list[dict[str, Any]] = []
    done = asyncio.get_running_loop().create_future()
    pc = RTCPeerConnection()
    player = MediaPlayer(path)
    try:
        channel = pc.createDataChannel("earmark")
        pc.addTrack(player.audio)

        @channel.on("message")
        def _on_message(text: str) -> None:
            message = json.loads(text)
            messages.append(message)
            on_message(message)
            if message.get("type") in ("Metadata", "Error") and not done.done():
                done.set_result(None)

        @channel.on("close")
        def _on_close() -> None:
            if not done.done():
                done.set_result(None)

        @player.audio.on("ended")
        def _on_ended() -> None:
            # Everything was sent: ask for the last finals and the Metadata.
            if channel.readyState == "open":
                channel.send(json.dumps({"type": "CloseStream"}))

        await pc.setLocalDescription(await pc.createOffer())
        query = urllib.parse.urlencode(params or {})
        headers = {"Authorization": f"Token {key}"} if key else {}
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(f"{server}/v1/webrtc/offer?{query}", headers=headers,
                                       json={"type": "offer", "sdp": pc.localDescription.sdp})
        if response.status_code != 200:
            raise RuntimeError(f"offer refused: {response.status_code} {response.text}")
        answer = response.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        await asyncio.wait_for(done, timeout_s)
        return messages
    finally:
        await pc.close()


def _print(message: dict[str, Any]) -> None:
    kind = message.get("type")
    if kind == "Results":
        text = message["channel"]["alternatives"][0]["transcript"]
        if text:
            tag = "final  " if message["is_final"] else "interim"
            print(f"[{message['start']:7.2f}s] {tag} {text}", flush=True)
    elif kind == "Error":
        print(f"error: {message.get('code')}: {message.get('description')}", file=sys.stderr)
    elif kind == "Metadata":
        print(f"done: {message['duration']:.1f} s of audio, request {message['request_id']}")
    elif kind == "Tags":
        print("tags: " + ", ".join(t["name"] for t in message.get("tags", [])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--server", default="http://127.0.0.1:8000")
    ap.add_argument("--key", default=None, help="API key, when the server needs one")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="query option as on /v1/listen (repeatable)")
    args = ap.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    asyncio.run(stream_file(args.server, args.file, params=params, key=args.key,
                            on_message=_print))


if __name__ == "__main__":
    main()
