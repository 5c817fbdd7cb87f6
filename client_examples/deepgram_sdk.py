#!/usr/bin/env python3
"""The official Deepgram Python SDK (v5+, ``pip install deepgram-sdk``) pointed at Earmark.

Only the base URL changes; the SDK still sends ``model=nova-3``, which Earmark serves with its
loaded model.

    python client_examples/deepgram_sdk.py speech.wav [--url ws://127.0.0.1:8000] [--key KEY]

The file must be 16-bit PCM WAV (any rate, any channel count: Earmark resamples and mixes).
"""

from __future__ import annotations

import argparse
import asyncio
import wave

from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import ListenV1Results


async def main(path: str, url: str, key: str) -> None:
    http_url = url.replace("ws://", "http://").replace("wss://", "https://")
    env = DeepgramClientEnvironment(base=http_url, production=url, agent=url, agent_rest=http_url)
    client = AsyncDeepgramClient(api_key=key, environment=env)
    with wave.open(path) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = w.readframes(w.getnframes())
    async with client.listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=str(rate), channels=str(channels),
        interim_results="true", punctuate="true",
    ) as socket:

        async def send() -> None:
            step = rate * channels * 2 // 10  # 100 ms
            for i in range(0, len(pcm), step):
                await socket.send_media(pcm[i : i + step])
                await asyncio.sleep(0.1)
            await socket.send_close_stream()

        sender = asyncio.create_task(send())
        async for message in socket:
            if isinstance(message, ListenV1Results):
                text = message.channel.alternatives[0].transcript
                if text:
                    print("final  " if message.is_final else "interim", text)
        await sender


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("file")
    ap.add_argument("--url", default="ws://127.0.0.1:8000")
    ap.add_argument("--key", default="not-needed-on-loopback")
    a = ap.parse_args()
    asyncio.run(main(a.file, a.url, a.key))
