"""The ASGI app: models load in the lifespan, routes are thin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from earmark import __version__, auth
from earmark.api.auth_routes import router as auth_router
from earmark.api.cluster_routes import Heartbeat, node_name
from earmark.api.cluster_routes import router as cluster_router
from earmark.api.conversation_routes import router as conversation_router
from earmark.api.health_routes import STATIC_DIR
from earmark.api.health_routes import router as health_router
from earmark.api.http_errors import install_error_handlers
from earmark.api.job_routes import router as job_router
from earmark.api.listen_routes import router as listen_router
from earmark.api.request_guard import RequestGuard, body_limits
from earmark.api.stream_jobs import SEED_BASE
from earmark.api.stream_jobs import router as stream_job_router
from earmark.api.stream_jobs import streams as stream_task_router
from earmark.api.sync_routes import router as sync_router
from earmark.api.tag_routes import router as tag_router
from earmark.api.tag_sessions import router as tag_session_router
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
    _set_up_state(app, settings, engine)
    # Outermost: keyless bodies and oversize bodies are refused before anything reads them.
    app.add_middleware(RequestGuard, limits=body_limits(settings.max_upload_bytes),
                       state=app.state)
    for router in (auth_router, websocket_router, webrtc_router, tag_router, sync_router,
                   job_router, conversation_router, listen_router, tag_session_router,
                   stream_job_router, stream_task_router, cluster_router, health_router):
        app.include_router(router)
    app.include_router(stream_task_router, prefix=SEED_BASE, include_in_schema=False)
    install_error_handlers(app)
    # The try-it page's static files (shipped in the package; no build step).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _set_up_state(app: FastAPI, settings: Settings, engine: Engine) -> None:
    """What lives as long as the app; what needs the database opens in the lifespan."""
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = SessionRegistry(
        engine.capacity, settings.max_url_pulls,
        on_refused=lambda: app.state.metrics.sessions_refused.inc())
    app.state.metrics = AppMetrics(engine, app.state.sessions)
    app.state.webrtc = WebRtcPeers(settings.max_webrtc_peers)
    app.state.tag_collections = None  # opened in the lifespan
    app.state.jobs = None
    app.state.job_runner = None
    app.state.live_jobs = None
    app.state.tag_sessions = TaggingSessions(app)
    app.state.stream_jobs = StreamJobs(app)
    app.state.metrics.watch_webrtc(app.state.webrtc)


def _lifespan(settings: Settings, engine: Engine) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background = await _open(app, settings, engine)
        try:
            yield
        finally:
            await _close(app, engine, background)

    return lifespan


async def _open(app: FastAPI, settings: Settings, engine: Engine) -> list[asyncio.Task[Any]]:
    """The database and what runs on it, the models, then the work to resume."""
    app.state.db = await asyncio.to_thread(open_database, settings.data_dir,
                                           settings.database_url)
    auth.install(app, KeyStore(app.state.db))
    app.state.egress = EgressProxy(parse_networks(settings.url_allow_networks)).start()
    app.state.tag_collections = TagCollections(
        app.state.db, max_per_owner=settings.max_tag_collections)
    app.state.jobs = JobStore(app.state.db)
    app.state.outbox = Outbox(app.state.db)
    app.state.webhook_master = await asyncio.to_thread(load_master_secret, settings)
    app.state.webhooks = WebhookDispatcher(app.state.outbox, settings, app.state.webhook_master)
    await asyncio.to_thread(engine.load)
    app.state.summaries = ConversationSummaries(app.state.jobs, engine)
    app.state.job_runner = JobRunner(app.state.jobs, engine, settings,
                                     app.state.webhooks.wake, app.state.summaries)
    await app.state.job_runner.prepare()
    app.state.heartbeat = Heartbeat(app)
    background = [asyncio.create_task(app.state.webhooks.run(), name="webhooks"),
                  asyncio.create_task(auth.end_revoked_sessions(app), name="revocations"),
                  asyncio.create_task(app.state.heartbeat.run(), name="heartbeat"),
                  *app.state.job_runner.start()]
    # On a shared database each node marks its live work and resumes only its own.
    app.state.live_jobs = LiveJobStore(
        app.state.db, node=node_name(settings) if settings.database_url else None)
    await app.state.tag_sessions.resume()
    await app.state.stream_jobs.resume()
    return background


async def _close(app: FastAPI, engine: Engine, background: list[asyncio.Task[Any]]) -> None:
    # Live pulls stop first and stay resumable; their last webhooks are already in the outbox.
    await app.state.tag_sessions.close()
    await app.state.stream_jobs.close()
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    await app.state.heartbeat.leave()
    await app.state.webrtc.close_all()
    engine.close()
    app.state.egress.close()
    app.state.db.dispose()
