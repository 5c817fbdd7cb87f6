"""A whole server on PostgreSQL: file jobs, tag collections and keys end to end."""

from __future__ import annotations

import httpx

from tests.conftest import running_server
from tests.e2e.client import wait_job, wav_bytes


def test_a_server_on_postgresql_runs_jobs_and_keeps_them_across_a_restart(postgres, speak,
                                                                          tmp_path) -> None:
    url = postgres.new_database()
    audio = wav_bytes(speak("The database is shared by every node of the cluster."))
    with running_server(data_dir=str(tmp_path), database_url=url) as server, \
            httpx.Client(base_url=server.http, timeout=60) as c:
        r = c.post("/v1/process/audio", content=audio, headers={"Content-Type": "audio/wav"})
        assert r.status_code == 201, r.text
        job, conversation = r.json()["jobId"], r.json()["conversationId"]
        assert wait_job(c, job)["status"] == "completed"
        collection = {"name": "ops", "tags": [{"name": "Databases", "kind": "topic",
                                               "description": "Databases and clusters."}]}
        assert c.post("/v1/tag-collections", json=collection).status_code == 201
    with running_server(data_dir=str(tmp_path), database_url=url) as server, \
            httpx.Client(base_url=server.http, timeout=60) as c:
        messages = c.get(f"/v1/conversations/{conversation}/messages").json()["messages"]
        assert "database" in " ".join(m["text"] for m in messages).lower()
        assert [t["name"] for t in c.get("/v1/tag-collections/ops").json()["tags"]] == [
            "Databases"]
