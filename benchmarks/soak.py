"""Soak: capacity-level live sessions for a long time, with nothing growing and nothing lost.

Keeps ``--streams`` real-time socket sessions running for ``--minutes`` (each streams its own
evaldata session, ~``--session-s`` long, then closes; a new one takes its place), on loopback.
Every ``--window-s`` it records the server's RSS, open file descriptors and threads, and the
final latency and results of the sessions that ended in the window. Checks at the end: RSS,
descriptors and threads flat (last window vs the first after warm-up), final p90 flat, no
session lost (every session closed 1000 with its own text), no 1011 (server fault).

    python benchmarks/soak.py [--minutes 30] [--streams 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import numpy as np
from _common import print_table, write_json
from capacity import sessions
from live_latency import latencies, start_server
from load_test import one, rss_mb

from earmark_eval import wer

PORT = 8771


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


async def soak(args: argparse.Namespace, pid: int) -> list[dict]:
    base = f"ws://127.0.0.1:{PORT}"
    pool = sessions(max(args.streams * 4, 8), args.session_s)
    done: list[tuple[float, list, tuple]] = []  # (end time, final latencies, outcome)
    stop_at = time.monotonic() + args.minutes * 60

    async def worker(k: int) -> None:
        n = k
        while time.monotonic() < stop_at:
            audio, spans, ref = pool[n % len(pool)]
            n += args.streams
            received, code = await one(base, audio)
            _, final_lat, _, _, text = latencies(received, spans)
            done.append((time.monotonic(), final_lat, (code, wer([ref], [text]))))

    windows: list[dict] = []

    async def sampler() -> None:
        start = time.monotonic()
        while time.monotonic() < stop_at:
            await asyncio.sleep(args.window_s)
            now = time.monotonic()
            recent = [d for d in done if d[0] > now - args.window_s]
            lat = [x for d in recent for x in d[1]]
            windows.append({
                "minute": round((now - start) / 60, 1),
                "sessions_ended": len(recent),
                "final_p50_s": round(float(np.percentile(lat, 50)), 2) if lat else None,
                "final_p90_s": round(float(np.percentile(lat, 90)), 2) if lat else None,
                "lost": sum(1 for d in recent if d[2][0] != 1000 or d[2][1] > 0.5),
                "closed_1011": sum(1 for d in recent if d[2][0] == 1011),
                "rss_mb": round(rss_mb(pid)),
                "fds": fds(pid),
                "threads": threads(pid),
            })
            print(windows[-1], flush=True)

    await asyncio.gather(sampler(), *(worker(k) for k in range(args.streams)))
    return windows


def verdict(windows: list[dict]) -> dict[str, bool]:
    """The checks, on the steady part: the first third of the run is warm-up (allocator
    arenas and CTranslate2's per-window-size buffers fill, then stop growing)."""
    steady = windows[max(1, len(windows) // 3):] or windows
    first, last = steady[0], steady[-1]
    minutes = max(last["minute"] - first["minute"], 1e-9)
    p90 = [w["final_p90_s"] for w in steady if w["final_p90_s"] is not None]
    return {
        "RSS flat (< +2 MB/min after warm-up)": (last["rss_mb"] - first["rss_mb"]) / minutes < 2,
        "descriptors flat (< +20)": last["fds"] - first["fds"] < 20,
        "threads flat (< +4)": last["threads"] - first["threads"] < 4,
        "final p90 flat (last <= 1.5 x first)": bool(p90) and p90[-1] <= 1.5 * p90[0] + 0.2,
        "no session lost": sum(w["lost"] for w in windows) == 0,
        "no server fault (1011)": sum(w["closed_1011"] for w in windows) == 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--session-s", type=float, default=60.0)
    ap.add_argument("--window-s", type=float, default=60.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    proc = start_server(PORT, {"EARMARK_MAX_SESSIONS": str(args.streams + 4),
                               "EARMARK_ADMIT_BY_CAPACITY": "false"})
    try:
        windows = asyncio.run(soak(args, proc.pid))
    finally:
        proc.terminate()
        proc.wait(30)
    print_table(windows, list(windows[0]))
    checks = verdict(windows)
    print("checks:", ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in checks.items()))
    write_json("soak", {"args": vars(args), "windows": windows, "checks": checks}, args.out)


if __name__ == "__main__":
    main()
