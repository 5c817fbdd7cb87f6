"""The ASGI app: models load in the lifespan, routes are thin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from earmark import __version__
from earmark.api.auth_routes import router as auth_router
from earmark.api.cluster_routes import Heartbeat, node_name
from earmark.api.cluster_routes import router as cluster_router
from earmark.api.conversation_routes import router as conversation_router
from earmark.api.health_routes import STATIC_DIR
from earmark.api.health_routes import router as health_router
from earmark.api.http_errors import install_error_handlers
from earmark.api.job_routes import router as job_router
from earmark.api.listen_routes import router as listen_router
from earmark.api.openai_routes import router as openai_router
from earmark.api.request_guard import RequestGuard, body_limits
from earmark.api.services import AppServices
from earmark.api.stream_jobs import SEED_BASE
from earmark.api.stream_jobs import router as stream_job_router
from earmark.api.stream_jobs import streams as stream_task_router
from earmark.api.sync_routes import router as sync_router
from earmark.api.tag_routes import router as tag_router
from earmark.api.tag_sessions import router as tag_session_router
from earmark.auth import Access, end_revoked_sessions
from earmark.config import Settings
from earmark.filejobs.runner import JobRunner
from earmark.filejobs.summaries import ConversationSummaries
from earmark.inference.engine import Engine
from earmark.ingest.egress_proxy import EgressProxy
from earmark.ingest.webrtc import WebRtcPeers
from earmark.ingest.webrtc import router as webrtc_router
from earmark.ingest.websocket import router as websocket_router
from earmark.live.registry import SessionRegistry
from earmark.livejobs.stream_jobs import StreamJobs
from earmark.livejobs.tag_sessions import TaggingSessions
from earmark.metrics import AppMetrics
from earmark.outbound.url_safety import parse_networks
from earmark.outbound.webhooks import WebhookDispatcher, load_master_secret
from earmark.store.db import open_database
from earmark.store.jobs import JobStore
from earmark.store.keys import KeyStore
from earmark.store.live_jobs import LiveJobStore
from earmark.store.tag_collections import TagCollections
from earmark.store.webhooks import Outbox

logger = logging.getLogger(__name__)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Builds the app. ``engine`` is created from ``settings`` when not given."""
    engine = engine or Engine(settings)
    app = FastAPI(title="Earmark", version=__version__, lifespan=_lifespan(settings, engine))
    # Outermost: keyless bodies and oversize bodies are refused before anything reads them.
    app.add_middleware(RequestGuard, limits=body_limits(settings.max_upload_bytes),
                       access=lambda: _access(app))
    for router in (auth_router, websocket_router, webrtc_router, tag_router, sync_router,
                   job_router, conversation_router, listen_router, openai_router,
                   tag_session_router, stream_job_router, stream_task_router, cluster_router,
                   health_router):
        app.include_router(router)
    app.include_router(stream_task_router, prefix=SEED_BASE, include_in_schema=False)
    install_error_handlers(app)
    # The try-it page's static files (shipped in the package; no build step).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _access(app: FastAPI) -> Access | None:
    found = getattr(app.state, "services", None)
    return found.access if found is not None else None  # None: starting up


def _lifespan(settings: Settings, engine: Engine) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await _open(settings, engine)
        app.state.services = services  # the one thing on app.state (api/services.py)
        background = await _start(services)
        try:
            yield
        finally:
            await _close(services, background)

    return lifespan


async def _open(settings: Settings, engine: Engine) -> AppServices:
    """The database and what runs on it, then the models."""
    db = await asyncio.to_thread(open_database, settings.data_dir, settings.database_url)
    jobs, outbox = JobStore(db), Outbox(db)
    master = await asyncio.to_thread(load_master_secret, settings)
    await asyncio.to_thread(engine.load)
    summaries = ConversationSummaries(jobs, engine)
    webhooks = WebhookDispatcher(outbox, settings, master)
    sessions = SessionRegistry(engine.capacity, settings.max_url_pulls)
    metrics = AppMetrics(engine, sessions)
    sessions.on_refused = metrics.sessions_refused.inc
    webrtc = WebRtcPeers(settings.max_webrtc_peers)
    metrics.watch_webrtc(webrtc)
    services = AppServices(
        settings=settings, engine=engine, access=Access.open(settings, KeyStore(db)),
        sessions=sessions, metrics=metrics, webrtc=webrtc,
        egress=EgressProxy(parse_networks(settings.url_allow_networks)).start(),
        tag_collections=TagCollections(db, max_per_owner=settings.max_tag_collections),
        # On a shared database each node marks its live work and resumes only its own.
        live_jobs=LiveJobStore(db, node=node_name(settings) if settings.database_url else None),
        webhooks=webhooks, webhook_master=master, db=db, jobs=jobs, outbox=outbox,
        summaries=summaries,
        job_runner=JobRunner(jobs, engine, settings, webhooks.wake, summaries))
    services.tag_sessions = TaggingSessions(services)
    services.stream_jobs = StreamJobs(services)
    services.heartbeat = Heartbeat(services)
    return services


async def _start(services: AppServices) -> list[asyncio.Task[Any]]:
    """What runs for the server's life, then the work to resume."""
    await services.job_runner.prepare()
    background = [
        asyncio.create_task(services.webhooks.run(), name="webhooks"),
        asyncio.create_task(end_revoked_sessions(services.access.keys, services.sessions),
                            name="revocations"),
        asyncio.create_task(services.heartbeat.run(), name="heartbeat"),
        *services.job_runner.start()]
    await services.tag_sessions.resume()
    await services.stream_jobs.resume()
    return background


async def _close(services: AppServices, background: list[asyncio.Task[Any]]) -> None:
    # Live pulls stop first and stay resumable; their last webhooks are already in the outbox.
    await services.tag_sessions.close()
    await services.stream_jobs.close()
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    await services.heartbeat.leave()
    await services.webrtc.close_all()
    services.engine.close()
    services.egress.close()
    services.db.dispose()
