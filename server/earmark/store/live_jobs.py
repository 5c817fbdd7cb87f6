"""Tagging sessions, stream jobs and per-key settings (synchronous; call from a thread).

Like file jobs, every result that triggers a webhook is written in one transaction with its
outbox row, so a restart can lose neither.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, insert, select, update

from earmark.errors import NotFound, TooManyStreams
from earmark.store.db import key_settings, stream_tasks, tagging_sessions
from earmark.store.webhooks import enqueue


@dataclass(frozen=True)
class TagSession:
    owner: str
    convo_id: str
    run_id: str
    state: str
    reason: str | None
    request: dict[str, Any]
    created: float
    finished: float | None
    result: dict[str, Any] | None


@dataclass(frozen=True)
class StreamTask:
    id: str
    owner: str
    state: str
    status: int | None
    reason: str | None
    request: dict[str, Any]
    webhook_url: str
    created: float
    updated: float
    next_segment: int
    stream_offset_s: float


def _tag(row: Any) -> TagSession:
    return TagSession(row.owner, row.convo_id, row.run_id, row.state, row.reason,
                      orjson.loads(row.request_json), row.created, row.finished,
                      orjson.loads(row.result_json) if row.result_json else None)


def _stream(row: Any) -> StreamTask:
    return StreamTask(row.id, row.owner, row.state, row.status, row.reason,
                      orjson.loads(row.request_json), row.webhook_url, row.created, row.updated,
                      row.next_segment, row.stream_offset_s)


class LiveJobStore:
    """``node``: this node's stable name when the database is shared by several nodes; its
    live work is marked with it, and only that is resumed after a restart (None: one node,
    which resumes everything)."""

    def __init__(self, db: Engine, *, clock: Any = time.time, node: str | None = None) -> None:
        self.db = db
        self.clock = clock
        self.node = node
        self._admit = threading.Lock()

    # --------------------------------------------------------- tagging sessions
    def start_tag_session(self, owner: str, convo_id: str, request: dict[str, Any]) -> TagSession:
        """A new listening run for the convoId, replacing any earlier entry (the seed's
        documented overwrite)."""
        now = self.clock()
        row = dict(owner=owner, convo_id=convo_id, run_id=str(uuid.uuid4()), state="listening",
                   reason=None, request_json=orjson.dumps(request).decode(), created=now,
                   finished=None, result_json=None, node=self.node)
        with self.db.begin() as conn:
            conn.execute(delete(tagging_sessions).where(tagging_sessions.c.owner == owner,
                                                        tagging_sessions.c.convo_id == convo_id))
            conn.execute(insert(tagging_sessions).values(**row))
            return _tag(conn.execute(select(tagging_sessions).where(
                tagging_sessions.c.run_id == row["run_id"])).one())

    def get_tag_session(self, owner: str, convo_id: str) -> TagSession:
        with self.db.connect() as conn:
            row = conn.execute(select(tagging_sessions).where(
                tagging_sessions.c.owner == owner,
                tagging_sessions.c.convo_id == convo_id)).first()
        if row is None:
            raise NotFound(f"no tagging session with convoId {convo_id!r}", param="convoId")
        return _tag(row)

    def listening_tag_sessions(self) -> list[TagSession]:
        """The sessions this node should resume after a restart."""
        query = select(tagging_sessions).where(tagging_sessions.c.state == "listening")
        if self.node is not None:
            query = query.where(tagging_sessions.c.node == self.node)
        with self.db.connect() as conn:
            return [_tag(r) for r in conn.execute(query).all()]

    def finish_tag_session(self, session: TagSession, *, state: str, reason: str | None,
                           result: dict[str, Any] | None, webhook_body: str | None) -> bool:
        """Records the outcome (and its webhook) unless a newer run replaced this one."""
        now = self.clock()
        with self.db.begin() as conn:
            done = conn.execute(update(tagging_sessions).where(
                tagging_sessions.c.run_id == session.run_id,
                tagging_sessions.c.state == "listening").values(
                state=state, reason=reason, finished=now,
                result_json=orjson.dumps(result).decode() if result is not None else None))
            if done.rowcount != 1:
                return False
            url = session.request.get("webhook")
            if webhook_body is not None and url:
                enqueue(conn, kind="tag", subject=session.run_id, owner=session.owner, url=url,
                        body=webhook_body, now=now)
        return True

    # -------------------------------------------------------------- stream jobs
    def create_stream(self, owner: str, request: dict[str, Any], webhook_url: str,
                      max_active: int) -> StreamTask:
        now = self.clock()
        task_id = str(uuid.uuid4())
        with self._admit, self.db.begin() as conn:
            running = conn.execute(select(func.count()).select_from(stream_tasks).where(
                stream_tasks.c.owner == owner, stream_tasks.c.state == "running")).scalar_one()
            if running >= max_active:
                raise TooManyStreams(f"this key already runs {running} stream tasks, the "
                                     f"limit; stop one first")
            conn.execute(insert(stream_tasks).values(
                id=task_id, owner=owner, state="running", status=None, reason=None,
                request_json=orjson.dumps(request).decode(), webhook_url=webhook_url,
                created=now, updated=now, next_segment=0, stream_offset_s=0.0,
                node=self.node))
            return _stream(conn.execute(select(stream_tasks).where(
                stream_tasks.c.id == task_id)).one())

    def get_stream(self, owner: str, task_id: str) -> StreamTask:
        with self.db.connect() as conn:
            row = conn.execute(select(stream_tasks).where(stream_tasks.c.id == task_id,
                                                          stream_tasks.c.owner == owner)).first()
        if row is None:
            raise NotFound(f"no stream task {task_id!r}", param="task_id")
        return _stream(row)

    def streams(self, owner: str | None = None, *, running_only: bool = False) -> list[StreamTask]:
        query = select(stream_tasks).order_by(stream_tasks.c.created)
        if owner is not None:
            query = query.where(stream_tasks.c.owner == owner)
        if running_only:
            query = query.where(stream_tasks.c.state == "running")
        with self.db.connect() as conn:
            return [_stream(r) for r in conn.execute(query).all()]

    def resumable_streams(self) -> list[StreamTask]:
        """The running tasks this node should resume after a restart."""
        query = select(stream_tasks).where(stream_tasks.c.state == "running").order_by(
            stream_tasks.c.created)
        if self.node is not None:
            query = query.where(stream_tasks.c.node == self.node)
        with self.db.connect() as conn:
            return [_stream(r) for r in conn.execute(query).all()]

    def record_segment(self, task: StreamTask, *, index: int, end_s: float, body: str) -> bool:
        """One segment callback; False once the task has stopped (nothing is sent)."""
        now = self.clock()
        with self.db.begin() as conn:
            done = conn.execute(update(stream_tasks).where(
                stream_tasks.c.id == task.id, stream_tasks.c.state == "running").values(
                next_segment=index + 1, stream_offset_s=end_s, updated=now))
            if done.rowcount != 1:
                return False
            enqueue(conn, kind="stream", subject=task.id, owner=task.owner,
                    url=task.webhook_url, body=body, now=now)
        return True

    def record_partial(self, task: StreamTask, *, body: str) -> bool:
        """A partial callback of the open segment: queued in order with the segments, with
        nothing recorded as sent (a resumed task sends that segment whole)."""
        now = self.clock()
        with self.db.begin() as conn:
            running = conn.execute(select(stream_tasks.c.id).where(
                stream_tasks.c.id == task.id, stream_tasks.c.state == "running")).first()
            if running is None:
                return False
            enqueue(conn, kind="stream", subject=task.id, owner=task.owner,
                    url=task.webhook_url, body=body, now=now)
        return True

    def stop_stream(self, task: StreamTask, *, status: int, reason: str, body: str) -> bool:
        now = self.clock()
        with self.db.begin() as conn:
            done = conn.execute(update(stream_tasks).where(
                stream_tasks.c.id == task.id, stream_tasks.c.state == "running").values(
                state="stopped", status=status, reason=reason, updated=now))
            if done.rowcount != 1:
                return False
            enqueue(conn, kind="stream", subject=task.id, owner=task.owner,
                    url=task.webhook_url, body=body, now=now)
        return True

    # ------------------------------------------------------------ key settings
    def webhook_url(self, owner: str) -> str | None:
        with self.db.connect() as conn:
            return conn.execute(select(key_settings.c.webhook_url).where(
                key_settings.c.owner == owner)).scalar_one_or_none()

    def set_webhook_url(self, owner: str, url: str | None) -> None:
        now = self.clock()
        with self.db.begin() as conn:
            conn.execute(delete(key_settings).where(key_settings.c.owner == owner))
            conn.execute(insert(key_settings).values(owner=owner, webhook_url=url, updated=now))
