#!/usr/bin/env python3
"""A whole file through Deepgram's pre-recorded API (``POST /v1/listen``) with the official
Deepgram Python SDK, pointed at Earmark: only the base URL changes.

    python client_examples/deepgram_prerecorded.py talk.mp3 [--url http://127.0.0.1:8000]
        [--key KEY]

Any format FFmpeg decodes. Prints one line per utterance: start-end, speaker, text.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
from deepgram import DeepgramClient
from deepgram.environment import DeepgramClientEnvironment


def main(path: str, url: str, key: str) -> None:
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://")
    env = DeepgramClientEnvironment(base=url, production=ws_url, agent=ws_url, agent_rest=url)
    with httpx.Client(timeout=600) as http:
        client = DeepgramClient(api_key=key, environment=env, httpx_client=http)
        response = client.listen.v1.media.transcribe_file(
            request=Path(path).read_bytes(), model="nova-3", smart_format=True,
            utterances=True, diarize=True)
    for u in response.results.utterances or []:
        print(f"{u.start:7.2f}-{u.end:7.2f}  speaker {u.speaker}  {u.transcript}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("file")
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--key", default="not-needed-on-loopback")
    a = ap.parse_args()
    main(a.file, a.url, a.key)
