"""Connection storm: ``--sockets`` (500) WebSockets open at once against a server limited to
``--max-sessions``. Each admitted socket streams 5 s of speech in real time and closes.

Reports how many were admitted, refused cleanly (HTTP 503 before the upgrade, or an Error
then close 1013), and anything else (timeouts, resets, 1011: must be 0); the admitted
sessions' results; the server's RSS and descriptors before and after; and whether a new
session works after the storm.

    python benchmarks/storm.py [--sockets 500] [--max-sessions 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

import numpy as np
import websockets
from _common import print_table, write_json
from live_latency import start_server
from load_test import rss_mb
from soak import fds

from earmark_eval import load_items, read_mono_16k

PORT = 8773


async def one(base: str, pcm: bytes, timeout_s: float) -> tuple[str, str]:
    """(outcome, final text)."""
    try:
        async with asyncio.timeout(timeout_s):
            async with websockets.connect(base + "/v1/listen?interim_results=false",
                                          open_timeout=timeout_s) as ws:
                t0 = time.monotonic()
                text = []

                async def send() -> None:
                    try:
                        for i in range(0, len(pcm), 6400):
                            await asyncio.sleep(max(0.0, t0 + i / 32000 - time.monotonic()))
                            await ws.send(pcm[i:i + 6400])
                        await ws.send(json.dumps({"type": "CloseStream"}))
                    except websockets.ConnectionClosed:
                        pass

                sender = asyncio.create_task(send())
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg.get("type") == "Results" and msg.get("is_final"):
                        text.append(msg["channel"]["alternatives"][0]["transcript"])
                await sender
                code = ws.close_code
        return ({1000: "admitted", 1013: "refused 1013"}.get(code, f"closed {code}"),
                " ".join(text))
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        return ("refused 503" if status == 503 else f"http {status}", "")
    except websockets.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
        return ("refused 1013" if code == 1013 else f"closed {code}", "")
    except TimeoutError:
        return ("timeout", "")
    except (OSError, websockets.WebSocketException) as exc:
        return (f"error {type(exc).__name__}", "")


async def storm(args: argparse.Namespace) -> tuple[list[tuple[str, str]], float]:
    item = next(it for it in load_items("short_read") if 4 <= it.duration_s <= 7)
    audio = read_mono_16k(item.path)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    base = f"ws://127.0.0.1:{PORT}"
    started = time.monotonic()
    results = await asyncio.gather(*(one(base, pcm, args.timeout_s)
                                     for _ in range(args.sockets)))
    return results, time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sockets", type=int, default=500)
    ap.add_argument("--max-sessions", type=int, default=16)
    ap.add_argument("--timeout-s", type=float, default=60.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    proc = start_server(PORT, {"EARMARK_MAX_SESSIONS": str(args.max_sessions),
                               "EARMARK_ADMIT_BY_CAPACITY": "false"})
    try:
        rss0, fd0 = rss_mb(proc.pid), fds(proc.pid)
        results, wall = asyncio.run(storm(args))
        time.sleep(2)
        rss1, fd1 = rss_mb(proc.pid), fds(proc.pid)
        after = asyncio.run(storm(argparse.Namespace(sockets=1, timeout_s=args.timeout_s)))
        alive = after[0][0][0] == "admitted"
    finally:
        proc.terminate()
        proc.wait(30)
    outcomes = Counter(o for o, _ in results)
    texts = [t for o, t in results if o == "admitted"]
    row = {"sockets": args.sockets, "max_sessions": args.max_sessions,
           **{k: outcomes.get(k, 0) for k in ("admitted", "refused 503", "refused 1013")},
           "other": sum(v for k, v in outcomes.items()
                        if k not in ("admitted", "refused 503", "refused 1013")),
           "admitted with text": sum(1 for t in texts if t.strip()),
           "wall_s": round(wall, 1), "rss_before_mb": round(rss0), "rss_after_mb": round(rss1),
           "fds_before": fd0, "fds_after": fd1, "session after storm": alive}
    print_table([row], list(row))
    print("outcomes:", dict(outcomes))
    checks = {"every socket admitted or refused cleanly": row["other"] == 0,
              "no more admitted than the limit": row["admitted"] <= args.sockets,
              "admitted sessions got their text": row["admitted with text"] == row["admitted"],
              "descriptors released (< +20)": fd1 - fd0 < 20,
              "server works after the storm": alive}
    print("checks:", ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in checks.items()))
    write_json("storm", {"result": row, "outcomes": dict(outcomes), "checks": checks}, args.out)


if __name__ == "__main__":
    main()
