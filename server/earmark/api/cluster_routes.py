"""``GET /v1/cluster``: the nodes sharing this database, from their heartbeats (operator
route: an ``--admin-api-keys`` key, or no keys configured at all)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request

from earmark import __version__
from earmark.api.services import AppServices, services
from earmark.auth import key_from_request, key_in
from earmark.config import Settings
from earmark.errors import Unauthorized
from earmark.store.keys import hash_key
from earmark.store.nodes import NodeRegistry, NodeState

logger = logging.getLogger(__name__)
router = APIRouter(tags=["cluster"])
HEARTBEAT_S = 2.0


def admin_digests(settings: Settings) -> list[str]:
    out = []
    for entry in (k.strip() for k in settings.admin_api_keys.split(",")):
        if entry:
            out.append(entry[7:].lower() if entry.lower().startswith("sha256:")
                       else hash_key(entry))
    return out


def require_admin(request: Request) -> None:
    found = services(request)
    admins = admin_digests(found.settings)
    if not admins and not found.access.keys.required:
        return  # no keys at all: every route is open (loopback only), this one too
    key, _ = key_from_request(request.headers, request.query_params, [])
    if not key or not key_in(key, admins):
        raise Unauthorized("this route needs an admin key (--admin-api-keys)")


def node_name(settings: Settings) -> str:
    """This node's stable name: ``--node-name``, else host name and port."""
    return settings.node_name or f"{socket.gethostname()}:{settings.port}"


class Heartbeat:
    """This node's row in the registry, written every ``HEARTBEAT_S`` while it runs."""

    def __init__(self, found: AppServices) -> None:
        self.services = found
        settings = found.settings
        self.registry = NodeRegistry(found.db)
        self.node_id = str(uuid.uuid4())
        self.name = node_name(settings)
        self.started = time.time()
        self.shared = bool(settings.database_url)

    def state(self) -> NodeState:
        found = self.services
        engine, sessions = found.engine, found.sessions
        return NodeState(
            node_id=self.node_id, name=self.name, url=found.settings.public_url or None,
            version=__version__, started=self.started, heartbeat=0.0,
            ready=bool(engine.ready and not sessions.draining),
            capacity=engine.capacity(), sessions=len(sessions), streams=sessions.streams,
            jobs_running=found.job_runner.running, owners=sessions.per_owner())

    async def run(self) -> None:
        await asyncio.to_thread(self.registry.expire)  # nodes killed long ago
        while True:
            try:
                await asyncio.to_thread(self.registry.beat, self.state())
                if self.shared:
                    # Per-key session limits count the key's sessions on the other nodes.
                    self.services.sessions.elsewhere = await asyncio.to_thread(
                        self.registry.sessions_elsewhere, self.node_id)
            except Exception:  # the database may be away for a moment; the next beat retries
                logger.exception("node heartbeat failed")
            await asyncio.sleep(HEARTBEAT_S)

    async def leave(self) -> None:
        try:
            await asyncio.to_thread(self.registry.forget, self.node_id)
        except Exception:  # noqa: BLE001 - its row then expires with its heartbeat
            logger.warning("could not take this node out of the registry")


@router.get("/v1/cluster", summary="The nodes sharing this database, with their load")
async def cluster(request: Request) -> dict[str, Any]:
    require_admin(request)
    heartbeat = services(request).heartbeat
    now = time.time()
    found = await asyncio.to_thread(heartbeat.registry.all)
    return {"self": heartbeat.node_id, "nodes": [
        {"id": n.node_id, "name": n.name, "url": n.url, "version": n.version,
         "startedAt": n.started, "heartbeatAt": n.heartbeat, "alive": n.alive(now),
         "ready": n.ready, "capacity": n.capacity, "sessions": n.sessions,
         "streams": n.streams, "jobsRunning": n.jobs_running} for n in found]}
