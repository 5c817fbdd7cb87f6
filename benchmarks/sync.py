"""``POST /v2/stream`` latency and throughput: 5 s clips of real speech (evaldata short_read).

- one request at a time: p50 / p90 latency of a 5 s clip (target p50 <= 300 ms on the 2-core
  CPU with tiny.en)
- 1, 2, 4, 8, 16 concurrent clients, each sending clips back to back: latency p50 / p90,
  requests per second, audio seconds per wall second, refusals (503)

    python benchmarks/sync.py [--requests 40] [--levels 1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import time
import wave

import httpx
import numpy as np
from _common import print_table, write_json
from live_latency import start_server

from earmark_eval import load_items, read_mono_16k

PORT = 8767
CLIP_S = 5.0


def clips() -> list[str]:
    out = []
    for item in load_items("short_read"):
        audio = read_mono_16k(item.path)
        if len(audio) < CLIP_S * 16000:
            continue
        pcm = (np.clip(audio[: int(CLIP_S * 16000)], -1, 1) * 32767).astype(np.int16)
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm.tobytes())
        out.append(base64.b64encode(buf.getvalue()).decode())
    if not out:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    return out


async def level(base: str, bodies: list[str], clients: int, total: int) -> dict:
    latencies: list[float] = []
    refused = 0
    counter = iter(range(total))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal refused
        for i in counter:
            t = time.perf_counter()
            r = await http.post("/v2/stream", json={"audio_data": bodies[i % len(bodies)]})
            if r.status_code == 503:
                refused += 1
                continue
            r.raise_for_status()
            latencies.append(time.perf_counter() - t)

    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await http.post("/v2/stream", json={"audio_data": bodies[0]})  # warm the path
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies)
    return {"clients": clients, "requests": len(lat), "refused_503": refused,
            "p50_ms": float(np.percentile(lat, 50) * 1000),
            "p90_ms": float(np.percentile(lat, 90) * 1000),
            "requests_per_s": len(lat) / wall, "audio_s_per_s": len(lat) * CLIP_S / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=40, help="requests per level")
    ap.add_argument("--levels", default="1,2,4,8,16")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    bodies = clips()
    proc = start_server(PORT, {"EARMARK_TAGGING": "false"})
    try:
        rows = [asyncio.run(level(f"http://127.0.0.1:{PORT}", bodies, int(n), args.requests))
                for n in args.levels.split(",")]
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"{CLIP_S:g} s clips of real speech, {args.requests} requests per level:")
    print_table(rows, list(rows[0]))
    one = rows[0]
    print(f"\none at a time: p50 {one['p50_ms']:.0f} ms (target <= 300 ms): "
          f"{'PASS' if one['p50_ms'] <= 300 else 'FAIL'}")
    write_json("sync", {"clip_s": CLIP_S, "levels": rows}, args.out)


if __name__ == "__main__":
    main()
