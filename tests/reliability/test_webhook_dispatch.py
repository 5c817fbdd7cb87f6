"""The webhook dispatcher sends each delivery once, even when an attempt ends while the list
of due deliveries is being read (that list still shows it as due)."""

from __future__ import annotations

import asyncio
import threading
import time

from earmark.config import Settings
from earmark.outbound import webhooks
from earmark.outbound.webhooks import WebhookDispatcher
from earmark.store.db import open_database
from earmark.store.webhooks import Outbox, enqueue


class StaleReads(Outbox):
    """From its second call on, ``due`` returns what it read only after an attempt has been
    recorded meanwhile: the race a slow database read opens."""

    def __init__(self, db) -> None:  # noqa: ANN001
        super().__init__(db)
        self.calls = 0
        self.recorded = threading.Event()

    def due(self, now: float, limit: int):  # noqa: ANN201
        rows = super().due(now, limit)
        self.calls += 1
        if self.calls > 1 and rows:
            self.recorded.wait(5)
            time.sleep(0.1)  # and the loop has seen that attempt end
        return rows

    def record(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().record(*args, **kwargs)
        self.recorded.set()


async def test_a_delivery_settling_during_the_due_read_is_not_sent_again(
        tmp_path, monkeypatch, database_url) -> None:
    db = open_database(str(tmp_path), database_url)
    outbox = StaleReads(db)
    with db.begin() as conn:
        enqueue(conn, kind="stream", subject="task-1", owner="o",
                url="https://hooks.example/x", body="{}", now=0.0)
    sent: list[str] = []

    async def slow_post(client, url, settings, body, headers):  # noqa: ANN001, ANN202
        sent.append(url)
        await asyncio.sleep(0.2)  # in flight while the next tick reads the due list
        return 200

    monkeypatch.setattr(webhooks, "post_pinned", slow_post)
    dispatcher = WebhookDispatcher(outbox, Settings(), b"k" * 32)
    runner = asyncio.create_task(dispatcher.run())
    for _ in range(100):  # until it was sent and the next ticks had their chance
        await asyncio.sleep(0.05)
        if dispatcher.sent and outbox.calls >= 3:
            break
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    db.dispose()
    assert outbox.calls >= 2  # the stale read did happen
    assert sent == ["https://hooks.example/x"]  # and the delivery went out once
    assert dispatcher.sent == 1


class FullDisk(Outbox):
    """``record`` fails as SQLite does on a full disk until ``room`` is set."""

    def __init__(self, db) -> None:  # noqa: ANN001
        super().__init__(db)
        self.room = threading.Event()
        self.failed_records = 0

    def record(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if not self.room.is_set():
            import sqlite3

            from sqlalchemy.exc import OperationalError

            self.failed_records += 1
            raise OperationalError("INSERT INTO webhook_attempts", {},
                                   sqlite3.OperationalError("database or disk is full"))
        super().record(*args, **kwargs)


async def test_an_attempt_that_cannot_be_recorded_is_not_sent_again(tmp_path, monkeypatch,
                                                                    caplog) -> None:
    db = open_database(str(tmp_path))
    outbox = FullDisk(db)
    with db.begin() as conn:
        enqueue(conn, kind="stream", subject="task-1", owner="o",
                url="https://hooks.example/x", body="{}", now=0.0)
    sent: list[str] = []

    async def post(client, url, settings, body, headers):  # noqa: ANN001, ANN202
        sent.append(url)
        return 200

    monkeypatch.setattr(webhooks, "post_pinned", post)
    dispatcher = WebhookDispatcher(outbox, Settings(), b"k" * 32)
    runner = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(1.5)  # 799 sends in 40 s before: one per tick
    assert sent == ["https://hooks.example/x"] and outbox.failed_records >= 1
    outbox.room.set()  # space comes back: the held attempt is recorded
    for _ in range(200):
        await asyncio.sleep(0.05)
        if not outbox.due(time.time() + 1e6, 10):
            break
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert not outbox.due(time.time() + 1e6, 10), "the delivery is recorded as delivered"
    db.dispose()
    assert sent == ["https://hooks.example/x"]
    assert "never retrieved" not in caplog.text


async def test_a_tag_webhook_retried_later_is_signed_at_its_own_time(tmp_path,
                                                                     monkeypatch) -> None:
    from earmark.dialects.chatsight import webhook_body, webhook_payload
    from earmark.outbound.webhooks import owner_secret
    from tests.conftest import client_example

    verify = client_example("verify_webhook")
    master = b"k" * 32
    secret = owner_secret(master, "o")
    queued_ms = int((time.time() - 3 * 3600) * 1000)  # written three hours ago
    stored = webhook_body(secret, webhook_payload(tags="Sports", undocumented="",
                                                  convo_id="c1"), queued_ms)
    assert not verify.verify_tag_webhook(secret, stored.encode())  # too old to accept as is
    db = open_database(str(tmp_path))
    outbox = Outbox(db)
    with db.begin() as conn:
        enqueue(conn, kind="tag", subject="c1", owner="o", url="https://hooks.example/t",
                body=stored, now=0.0)
    sent: list[bytes] = []

    async def post(client, url, settings, body, headers):  # noqa: ANN001, ANN202
        assert verify.verify(secret, headers, body)
        sent.append(body)
        return 200

    monkeypatch.setattr(webhooks, "post_pinned", post)
    dispatcher = WebhookDispatcher(outbox, Settings(), master)
    runner = asyncio.create_task(dispatcher.run())
    for _ in range(100):
        await asyncio.sleep(0.05)
        if dispatcher.sent:
            break
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert len(sent) == 1 and verify.verify_tag_webhook(secret, sent[0])
    [entry] = outbox.history("o", "c1")
    assert entry["body"].encode() == sent[0]  # the history shows what was sent
    db.dispose()
