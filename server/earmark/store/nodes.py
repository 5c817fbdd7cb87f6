"""The node registry: every server process sharing the database writes a heartbeat row with
its measured capacity and load; any node can list them all (``GET /v1/cluster``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, select, update

from earmark.store.db import nodes

ALIVE_S = 10.0  # a node whose last heartbeat is older than this is taken as gone


@dataclass(frozen=True)
class NodeState:
    node_id: str
    name: str
    url: str | None
    version: str
    started: float
    heartbeat: float
    ready: bool
    capacity: int
    sessions: int
    streams: int
    jobs_running: int
    owners: dict[str, int] = field(default_factory=dict)  # live sessions per key (owner)

    def alive(self, now: float) -> bool:
        return now - self.heartbeat <= ALIVE_S


class NodeRegistry:
    def __init__(self, db: Engine, *, clock: Any = time.time) -> None:
        self.db = db
        self.clock = clock

    def beat(self, state: NodeState) -> None:
        """Writes this node's row (an update, or the first insert)."""
        values = {**asdict(state), "heartbeat": self.clock()}
        values["owners_json"] = orjson.dumps(values.pop("owners")).decode()
        with self.db.begin() as conn:
            done = conn.execute(update(nodes).where(nodes.c.node_id == state.node_id)
                                .values(**values)).rowcount
            if not done:
                conn.execute(insert(nodes).values(**values))

    def all(self) -> list[NodeState]:
        with self.db.connect() as conn:
            rows = conn.execute(select(nodes).order_by(nodes.c.started)).all()
        out = []
        for r in rows:
            fields = dict(r._mapping)
            fields["owners"] = orjson.loads(fields.pop("owners_json") or "{}")
            out.append(NodeState(**fields))
        return out

    def sessions_elsewhere(self, node_id: str) -> dict[str, int]:
        """Live sessions per key on the other nodes that are alive."""
        now = self.clock()
        total: dict[str, int] = {}
        for node in self.all():
            if node.node_id != node_id and node.alive(now):
                for owner, n in node.owners.items():
                    total[owner] = total.get(owner, 0) + n
        return total

    def forget(self, node_id: str) -> None:
        """A clean shutdown takes the node's row away at once."""
        with self.db.begin() as conn:
            conn.execute(delete(nodes).where(nodes.c.node_id == node_id))

    def expire(self, older_than_s: float = 3600.0) -> int:
        """Drops rows of nodes dead for a long time (killed, never shut down cleanly)."""
        with self.db.begin() as conn:
            return conn.execute(delete(nodes).where(
                nodes.c.heartbeat < self.clock() - older_than_s)).rowcount
