"""The webhook outbox: pending deliveries, their attempts (synchronous; call from a thread).

Deliveries for one subject (a job) go out in the order they were written: a delivery is due
only when no earlier delivery for its subject is still pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, insert, select, update
from sqlalchemy.orm import aliased

from earmark.store.db import webhook_attempts, webhook_deliveries


@dataclass(frozen=True)
class Delivery:
    id: int
    kind: str
    subject: str
    owner: str
    url: str
    body: str
    created: float
    attempts: int


class Outbox:
    def __init__(self, db: Engine) -> None:
        self.db = db

    def due(self, now: float, limit: int) -> list[Delivery]:
        """Pending deliveries whose time has come and that head their subject's queue."""
        d = webhook_deliveries
        earlier = aliased(webhook_deliveries)
        head = ~exists().where(and_(earlier.c.subject == d.c.subject,
                                    earlier.c.state == "pending", earlier.c.id < d.c.id))
        query = (select(d).where(d.c.state == "pending", d.c.next_attempt_at <= now, head)
                 .order_by(d.c.next_attempt_at, d.c.id).limit(limit))
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return [Delivery(r.id, r.kind, r.subject, r.owner, r.url, r.body, r.created, r.attempts)
                for r in rows]

    def next_due_at(self) -> float | None:
        with self.db.connect() as conn:
            return conn.execute(select(func.min(webhook_deliveries.c.next_attempt_at)).where(
                webhook_deliveries.c.state == "pending")).scalar_one_or_none()

    def record(self, delivery: Delivery, *, at: float, duration_ms: float,
               status_code: int | None, error: str | None, delivered: bool,
               next_attempt_at: float | None, body: str | None = None) -> None:
        """One attempt. Not delivered and no next time: the delivery is abandoned. ``body``:
        what this attempt sent, when it was signed anew (kept, so the history shows it)."""
        state = "delivered" if delivered else ("pending" if next_attempt_at else "abandoned")
        with self.db.begin() as conn:
            conn.execute(insert(webhook_attempts).values(
                delivery_id=delivery.id, at=at, status_code=status_code, error=error,
                duration_ms=duration_ms))
            conn.execute(update(webhook_deliveries).where(
                webhook_deliveries.c.id == delivery.id).values(
                attempts=webhook_deliveries.c.attempts + 1, state=state,
                next_attempt_at=next_attempt_at or at, delivered_at=at if delivered else None,
                **({"body": body} if body is not None else {})))

    def history(self, owner: str, subject: str) -> list[dict[str, Any]]:
        """Every delivery for a subject with its attempts, oldest first (for the API)."""
        d, a = webhook_deliveries, webhook_attempts
        with self.db.connect() as conn:
            rows = conn.execute(select(d).where(d.c.owner == owner, d.c.subject == subject)
                                .order_by(d.c.id)).all()
            out = []
            for r in rows:
                tries = conn.execute(select(a).where(a.c.delivery_id == r.id)
                                     .order_by(a.c.id)).all()
                out.append({
                    "id": r.id, "url": r.url, "body": r.body, "state": r.state,
                    "created": r.created, "deliveredAt": r.delivered_at,
                    "nextAttemptAt": r.next_attempt_at if r.state == "pending" else None,
                    "attempts": [{"at": t.at, "statusCode": t.status_code, "error": t.error,
                                  "durationMs": round(t.duration_ms, 1)} for t in tries],
                })
        return out

    def pending_count(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(webhook_deliveries).where(
                webhook_deliveries.c.state == "pending")).scalar_one())


def enqueue(conn: Connection, *, kind: str, subject: str, owner: str, url: str, body: str,
            now: float) -> None:
    """Adds a delivery inside the caller's transaction (with the change it reports)."""
    conn.execute(insert(webhook_deliveries).values(
        kind=kind, subject=subject, owner=owner, url=url, body=body, created=now,
        state="pending", attempts=0, next_attempt_at=now))
