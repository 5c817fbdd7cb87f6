"""Three Earmark nodes on one PostgreSQL database behind HAProxy with ``deploy/haproxy.cfg``:
live sockets spread over the nodes, the excess is refused with Earmark's own 1013 only when
every node is full, and file jobs sent through the balancer spread and complete, their
results readable through any node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.conftest import ROOT, free_port, running_server
from tests.e2e.client import raw_session, url

CAPACITY = 2  # live sessions per node


@pytest.fixture(scope="module")
def balanced(tmp_path_factory, postgres) -> Iterator[tuple[str, list]]:
    if shutil.which("haproxy") is None:
        pytest.skip("HAProxy is not installed (the setup installs it from Debian)")
    database = postgres.new_database()
    with contextlib.ExitStack() as stack:
        nodes = [stack.enter_context(running_server(
            data_dir=str(tmp_path_factory.mktemp(f"node{k}")), max_sessions=str(CAPACITY),
            tagging="false", node_name=f"node{k}", database_url=database))
            for k in (1, 2, 3)]
        port = free_port()
        env = {**os.environ, "EARMARK_LB_BIND": f"127.0.0.1:{port}",
               **{f"EARMARK_NODE{k}": n.http.removeprefix("http://")
                  for k, n in enumerate(nodes, start=1)}}
        log = stack.enter_context(open(tmp_path_factory.mktemp("lb") / "haproxy.log", "wb"))
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(proc.wait, 10)
        stack.callback(proc.terminate)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("HAProxy did not come up")
        yield f"ws://127.0.0.1:{port}", nodes


def streams(node) -> int:  # noqa: ANN001
    return httpx.get(f"{node.http}/readyz", timeout=5).json()["streams"]


async def test_sockets_spread_over_the_nodes_and_the_excess_gets_1013(balanced) -> None:
    ws_base, nodes = balanced
    held = []
    try:
        for _ in range(len(nodes) * CAPACITY):
            ws = await websockets.connect(url(ws_base))
            await ws.send(b"\x00\x00" * 1600)  # 0.1 s of silence: a live session
            held.append(ws)
            await asyncio.sleep(0.7)  # the health checks (every 0.5 s) see the new load
        assert [streams(n) for n in nodes] == [CAPACITY] * len(nodes)
        for node in nodes:  # every node now tells the balancer it is full
            assert httpx.get(f"{node.http}/readyz", timeout=5).status_code == 503
        refused = await asyncio.gather(*(raw_session(ws_base, []) for _ in range(3)))
        for r in refused:
            assert r.close_code == 1013 and r.messages[-1]["variant"] == "OVERLOADED", r
        # The sockets that were let in are still being served.
        for ws in held:
            await ws.send(json.dumps({"type": "KeepAlive"}))
    finally:
        for ws in held:
            await ws.send(json.dumps({"type": "CloseStream"}))
            await ws.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(streams(n) for n in nodes):
        await asyncio.sleep(0.2)
    assert [streams(n) for n in nodes] == [0] * len(nodes)


def test_file_jobs_through_the_balancer_spread_and_complete(balanced, speak) -> None:
    from tests.e2e.client import wait_job, wav_bytes

    ws_base, nodes = balanced
    http = ws_base.replace("ws://", "http://")
    audio = wav_bytes(speak("Every node of the cluster reads the same database."))
    with httpx.Client(base_url=http, timeout=60) as c:
        # A new connection per upload, as separate clients would open: leastconn spreads
        # connections, not requests on one kept-alive connection.
        made = [httpx.post(f"{http}/v1/process/audio", content=audio, timeout=60,
                           headers={"Content-Type": "audio/wav", "Connection": "close"})
                for _ in range(12)]
        assert all(r.status_code == 201 for r in made), [r.text for r in made]
        for r in made:
            assert wait_job(c, r.json()["jobId"], timeout_s=180)["status"] == "completed"
        # Any node answers for any conversation: the results are in the shared database.
        for node in nodes:
            conv = made[0].json()["conversationId"]
            got = httpx.get(f"{node.http}/v1/conversations/{conv}/messages", timeout=10)
            assert "database" in " ".join(m["text"] for m in got.json()["messages"]).lower()
    ran = [n.log_path.read_text().count("file job ") for n in nodes]
    assert sum(1 for count in ran if count) >= 2, ran  # the work was spread
