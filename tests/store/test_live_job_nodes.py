"""On a shared database each node resumes its own live work after a restart, not another
node's (two nodes resuming one stream task would pull it twice and send every segment twice)."""

from __future__ import annotations

from earmark.store.db import open_database
from earmark.store.live_jobs import LiveJobStore


def test_a_node_resumes_only_its_own_sessions_and_tasks(tmp_path, database_url) -> None:
    db = open_database(tmp_path, database_url)
    try:
        a, b = LiveJobStore(db, node="node-a"), LiveJobStore(db, node="node-b")
        a.start_tag_session("o", "room-1", {"url": "http://x/a.m3u8"})
        task = a.create_stream("o", {"audio_url": "rtmp://x/live"}, "http://hook", 5)
        assert [s.convo_id for s in a.listening_tag_sessions()] == ["room-1"]
        assert [t.id for t in a.resumable_streams()] == [task.id]
        assert b.listening_tag_sessions() == [] and b.resumable_streams() == []
        # One node (no name: SQLite, nothing shared) resumes everything.
        alone = LiveJobStore(db)
        assert [t.id for t in alone.resumable_streams()] == [task.id]
        # Every node still sees every task (status routes, per-key limits).
        assert [t.id for t in b.streams("o", running_only=True)] == [task.id]
    finally:
        db.dispose()
