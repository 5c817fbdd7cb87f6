"""Two nodes on one PostgreSQL database find each other through the node registry."""

from __future__ import annotations

import time

import httpx

from tests.conftest import running_server


def nodes(http: str, key: str) -> httpx.Response:
    return httpx.get(f"{http}/v1/cluster", headers={"Authorization": f"Bearer {key}"},
                     timeout=10)


def test_nodes_sharing_a_database_list_each_other_and_a_clean_stop_leaves(postgres,
                                                                         tmp_path) -> None:
    url = postgres.new_database()
    common = {"database_url": url, "api_keys": "user-key", "admin_api_keys": "admin-key",
              "tagging": "false"}
    with running_server(data_dir=str(tmp_path / "a"), node_name="node-a", **common) as a:
        with running_server(data_dir=str(tmp_path / "b"), node_name="node-b", **common) as b:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                got = nodes(a.http, "admin-key")
                assert got.status_code == 200, got.text
                if {n["name"] for n in got.json()["nodes"]} == {"node-a", "node-b"}:
                    break
                time.sleep(0.3)
            listed = {n["name"]: n for n in got.json()["nodes"]}
            assert set(listed) == {"node-a", "node-b"}, listed
            assert all(n["alive"] and n["ready"] and n["capacity"] >= 1
                       for n in listed.values())
            assert got.json()["self"] == listed["node-a"]["id"]
            # An ordinary key may not read the registry; no key at all neither.
            assert nodes(b.http, "user-key").status_code == 401
            assert httpx.get(f"{b.http}/v1/cluster", timeout=10).status_code == 401
        # node-b stopped cleanly: its row went with it.
        assert [n["name"] for n in nodes(a.http, "admin-key").json()["nodes"]] == ["node-a"]


async def test_a_per_key_session_limit_holds_across_nodes(postgres, tmp_path) -> None:
    import asyncio

    import websockets

    from tests.e2e.client import url as listen_url

    database = postgres.new_database()
    common = {"database_url": database, "api_keys": "user-key", "max_sessions_per_key": "1",
              "tagging": "false"}
    auth = {"Authorization": "Token user-key"}

    async def refused_on(node) -> bool:  # noqa: ANN001
        try:
            async with websockets.connect(listen_url(node.ws), additional_headers=auth):
                return False
        except websockets.InvalidStatus as err:
            assert err.response.status_code == 429, err
            return True

    with running_server(data_dir=str(tmp_path / "a"), node_name="node-a", **common) as a, \
            running_server(data_dir=str(tmp_path / "b"), node_name="node-b", **common) as b:
        held = await websockets.connect(listen_url(a.ws), additional_headers=auth)
        try:
            await held.send(b"\x00\x00" * 1600)
            # Node b learns of it from the registry within two heartbeats (2 s each).
            for _ in range(40):
                if await refused_on(b):
                    break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("node b never counted the key's session on node a")
        finally:
            await held.close()
        for _ in range(40):  # and lets the key in again once that session ended
            if not await refused_on(b):
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("node b kept refusing after the session ended")
