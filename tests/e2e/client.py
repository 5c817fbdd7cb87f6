"""A small live-socket client for the end-to-end tests (the real websockets library)."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from dataclasses import dataclass, field

import numpy as np
import websockets


@dataclass
class Session:
    messages: list[dict] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    sent_s: float = 0.0
    sent_at: list[float] = field(default_factory=list)  # audio s sent when each message came

    @property
    def results(self) -> list[dict]:
        return [m for m in self.messages if m.get("type") == "Results"]

    @property
    def finals(self) -> list[dict]:
        return [m for m in self.results if m["is_final"]]

    @property
    def interims(self) -> list[dict]:
        return [m for m in self.results if not m["is_final"]]

    @property
    def final_text(self) -> str:
        return " ".join(
            m["channel"]["alternatives"][0]["transcript"] for m in self.finals
        ).strip()

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m.get("type") == kind]


def url(base: str, **params: object) -> str:
    query = urllib.parse.urlencode({k: str(v).lower() if isinstance(v, bool) else v
                                    for k, v in params.items()})
    return f"{base}/v1/listen" + (f"?{query}" if query else "")


async def stream(
    base: str,
    pcm: np.ndarray | bytes,
    *,
    chunk_ms: int = 100,
    pace: float = 0.0,
    sample_rate: int = 16000,
    channels: int = 1,
    finalize: bool = False,
    close: bool = True,
    headers: dict[str, str] | None = None,
    **params: object,
) -> Session:
    """Sends ``pcm`` in chunks (paced at ``pace`` x real time, 0 = as fast as possible), then
    CloseStream, and collects every message until the server closes the socket."""
    data = pcm.tobytes() if isinstance(pcm, np.ndarray) else pcm
    params.setdefault("sample_rate", sample_rate)
    params.setdefault("channels", channels)
    out = Session()
    step = sample_rate * channels * 2 * chunk_ms // 1000
    async with websockets.connect(url(base, **params), additional_headers=headers or {},
                                  max_size=None) as ws:

        async def send() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(0, len(data), step):
                await ws.send(data[i : i + step])
                out.sent_s = (i + step) / (sample_rate * channels * 2)
                if pace:
                    await asyncio.sleep(max(0.0, start + out.sent_s / pace - loop.time()))
            if finalize:
                await ws.send(json.dumps({"type": "Finalize"}))
            if close:
                await ws.send(json.dumps({"type": "CloseStream"}))

        sender = asyncio.create_task(send())
        try:
            async for raw in ws:
                out.messages.append(json.loads(raw))
                out.sent_at.append(out.sent_s)
        except websockets.ConnectionClosedError:
            pass
        await sender
        out.close_code = ws.close_code
        out.close_reason = ws.close_reason or ""
    return out


async def raw_session(base: str, frames: list[bytes | str], **params: object) -> Session:
    """Sends the given frames as they are and collects what comes back."""
    out = Session()
    async with websockets.connect(url(base, **params), max_size=None) as ws:
        try:
            for frame in frames:
                await ws.send(frame)
            async for raw in ws:
                out.messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        out.close_code = ws.close_code
        out.close_reason = ws.close_reason or ""
    return out


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    """int16 samples, shape (n,) or (n, channels) -> WAV file bytes."""
    import io
    import wave

    channels = 1 if samples.ndim == 1 else samples.shape[1]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def wait_job(client, job_id: str, headers: dict[str, str] | None = None,  # noqa: ANN001
             timeout_s: float = 120.0) -> dict:
    """Polls ``GET /v1/job/{id}`` (an httpx.Client) until the job is completed or failed."""
    import time

    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/job/{job_id}", headers=headers or {}).json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {body}")
