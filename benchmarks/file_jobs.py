"""File-job throughput: N copies of the 90 s evaldata long file submitted at once.

For each level: wall time until every job completed, audio seconds transcribed per wall
second, time to completion per job (p50 / max), WER against the reference, and how long the
`completed` webhook took to arrive after the job finished.

    python benchmarks/file_jobs.py [--levels 1,2,4,8] [--job-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import orjson
from _common import print_table, write_json
from live_latency import start_server

from earmark_eval import load_items, wer

PORT = 8768


class Hooks:
    """A loopback receiver that notes when each job's `completed` webhook arrived."""

    def __init__(self) -> None:
        self.completed_at: dict[str, float] = {}
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body["status"] == "completed":
                    hooks.completed_at[body["jobId"]] = time.time()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def level(base: str, data: bytes, reference: str, duration_s: float, n: int,
                hooks: Hooks) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        t0 = time.time()
        jobs = []
        for _ in range(n):
            r = await http.post("/v1/process/audio", content=data,
                                params={"webhookUrl": hooks.url})
            r.raise_for_status()
            jobs.append(r.json())
        done: dict[str, float] = {}
        updated: dict[str, float] = {}
        while len(done) < n:
            for j in jobs:
                if j["jobId"] in done:
                    continue
                body = (await http.get(f"/v1/job/{j['jobId']}")).json()
                if body["status"] == "failed":
                    raise SystemExit(f"job failed: {body}")
                if body["status"] == "completed":
                    done[j["jobId"]] = time.time()
                    updated[j["jobId"]] = _parse(body["updatedAt"])
            await asyncio.sleep(0.05)
        wall = max(done.values()) - t0
        wers = []
        for j in jobs:
            msgs = (await http.get(f"/v1/conversations/{j['conversationId']}/messages")).json()
            wers.append(wer([reference], [" ".join(m["text"] for m in msgs["messages"])]))
    deadline = time.time() + 30
    while len([j for j in jobs if j["jobId"] in hooks.completed_at]) < n and time.time() < deadline:
        await asyncio.sleep(0.05)
    hook_ms = [(hooks.completed_at[j["jobId"]] - updated[j["jobId"]]) * 1000 for j in jobs
               if j["jobId"] in hooks.completed_at]
    per_job = np.array([done[j["jobId"]] - t0 for j in jobs])
    return {"jobs": n, "audio_s": round(n * duration_s, 1), "wall_s": wall,
            "audio_s_per_s": n * duration_s / wall, "job_p50_s": float(np.median(per_job)),
            "job_max_s": float(per_job.max()), "wer_mean": float(np.mean(wers)),
            "webhook_p50_ms": float(np.median(hook_ms)) if hook_ms else float("nan"),
            "webhooks": len(hook_ms)}


def _parse(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("--job-workers", default="2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    items = load_items("long")
    if not items:
        raise SystemExit("no evaldata found (set EARMARK_EVALDATA)")
    item = items[0]
    data = item.path.read_bytes()
    hooks = Hooks()
    with tempfile.TemporaryDirectory() as data_dir:
        proc = start_server(PORT, {"EARMARK_TAGGING": "false", "EARMARK_DATA_DIR": data_dir,
                                   "EARMARK_URL_ALLOW_NETWORKS": "127.0.0.0/8",
                                   "EARMARK_MAX_JOBS_PER_KEY": "100",
                                   "EARMARK_JOB_WORKERS": args.job_workers})
        try:
            rows = [asyncio.run(level(f"http://127.0.0.1:{PORT}", data, item.reference or "",
                                      item.duration_s, int(n), hooks))
                    for n in args.levels.split(",")]
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"{item.id} ({item.duration_s:.0f} s), job_workers={args.job_workers}:")
    print_table(rows, list(rows[0]))
    write_json("file_jobs", {"file": item.id, "duration_s": item.duration_s,
                             "job_workers": int(args.job_workers), "levels": rows}, args.out)


if __name__ == "__main__":
    main()
