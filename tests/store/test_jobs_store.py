"""JobStore and Outbox over a real SQLite file and a real PostgreSQL server (no Earmark
server): the same queries on both."""

from __future__ import annotations

import pytest

from earmark.core.jobs import JobStatus
from earmark.errors import NotFound, TooManyJobs
from earmark.store.db import open_database
from earmark.store.jobs import JobStore
from earmark.store.webhooks import Outbox


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def stores(tmp_path, database_url):
    db = open_database(tmp_path, database_url)
    clock = Clock()
    yield JobStore(db, clock=clock), Outbox(db), clock
    db.dispose()


def new_job(store: JobStore, owner: str = "o", conversation: str | None = None,
            webhook: str | None = "http://hook", max_active: int = 5):
    return store.create_job(owner=owner, conversation_id=conversation, name=None,
                            audio_path="/nowhere", duration_s=10.0, channels=1, options={},
                            webhook_url=webhook, max_active=max_active)


def test_status_changes_write_their_webhooks_in_order(stores) -> None:
    store, outbox, clock = stores
    job = new_job(store)
    store.start(job.id)
    assert store.complete(job.id, [{"text": "hi"}])
    due = outbox.due(clock.t, 10)
    assert len(due) == 1 and '"scheduled"' in due[0].body  # later ones wait for the head
    outbox.record(due[0], at=clock.t, duration_ms=1, status_code=500, error="HTTP 500",
                  delivered=False, next_attempt_at=clock.t + 5)
    assert outbox.due(clock.t, 10) == []  # the head is backing off; nothing overtakes it
    clock.t += 5
    head = outbox.due(clock.t, 10)[0]
    outbox.record(head, at=clock.t, duration_ms=1, status_code=200, error=None,
                  delivered=True, next_attempt_at=None)
    nxt = outbox.due(clock.t, 10)
    assert len(nxt) == 1 and '"in_progress"' in nxt[0].body
    history = outbox.history("o", job.id)
    assert [d["state"] for d in history] == ["delivered", "pending", "pending"]
    assert [a["statusCode"] for a in history[0]["attempts"]] == [500, 200]


def test_final_jobs_never_move_and_results_are_stored(stores) -> None:
    store, _, _ = stores
    job = new_job(store, webhook=None)
    assert store.start(job.id).status is JobStatus.IN_PROGRESS
    assert store.complete(job.id, [{"text": "a"}])
    assert not store.fail(job.id, "late")
    assert store.get_job("o", job.id).status is JobStatus.COMPLETED
    assert store.results(job.conversation_id) == {job.id: [{"text": "a"}]}
    assert store.start(job.id) is None


def test_restart_sees_unfinished_jobs_and_counts_runs(stores) -> None:
    store, _, clock = stores
    a = new_job(store)
    clock.t += 0.001  # oldest first: by creation time (rows have no order of their own)
    b = new_job(store)
    store.start(a.id)
    assert [j.id for j in store.unfinished()] == [a.id, b.id]
    assert store.start(a.id).runs == 2  # resumed: no second in_progress webhook
    assert store.get_job("o", a.id).status is JobStatus.IN_PROGRESS


def test_per_owner_limit_append_offsets_and_ownership(stores) -> None:
    store, _, _ = stores
    first = new_job(store, max_active=2)
    second = new_job(store, conversation=first.conversation_id, max_active=2)
    assert second.offset_s == 10.0
    with pytest.raises(TooManyJobs):
        new_job(store, max_active=2)
    new_job(store, owner="other", max_active=2)
    with pytest.raises(NotFound):
        store.get_job("other", first.id)
    with pytest.raises(NotFound):
        new_job(store, owner="other", conversation=first.conversation_id)


def test_delete_and_retention(stores) -> None:
    store, outbox, clock = stores
    job = new_job(store)
    store.start(job.id)
    store.complete(job.id, [])
    old = new_job(store)
    store.start(old.id)
    store.fail(old.id, "bad audio")
    removed = store.delete_conversation("o", job.conversation_id)
    assert [j.id for j in removed] == [job.id]
    assert outbox.history("o", job.id) == []
    clock.t += 100
    assert store.expire(audio_before=clock.t, results_before=0) == ["/nowhere"]
    assert store.get_job("o", old.id).audio_path is None
    assert store.expire(audio_before=clock.t, results_before=clock.t) == []
    with pytest.raises(NotFound):
        store.get_job("o", old.id)


def test_the_database_and_data_dir_are_owner_only(tmp_path):
    import stat

    from earmark.store.db import open_database

    data = tmp_path / "fresh"
    db = open_database(data)
    try:
        with db.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE probe (x)")
        for name in ("earmark.db", "earmark.db-wal"):
            mode = stat.S_IMODE((data / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
    finally:
        db.dispose()
