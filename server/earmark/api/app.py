"""The ASGI app: models load in the lifespan, routes are thin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from earmark import __version__, auth
from earmark.api.auth_routes import router as auth_router
from earmark.api.cluster_routes import Heartbeat, node_name
from earmark.api.cluster_routes import router as cluster_router
from earmark.api.job_routes import router as job_router
from earmark.api.listen_routes import router as listen_router
from earmark.api.request_guard import RequestGuard, body_limits
from earmark.api.stream_jobs import SEED_BASE, StreamJobs
from earmark.api.stream_jobs import router as stream_job_router
from earmark.api.stream_jobs import streams as stream_task_router
from earmark.api.sync_routes import router as sync_router
from earmark.api.tag_routes import router as tag_router
from earmark.api.tag_sessions import TaggingSessions
from earmark.api.tag_sessions import router as tag_session_router
from earmark.api.webhooks import WebhookDispatcher, load_master_secret
from earmark.config import Settings
from earmark.errors import (
    EarmarkError,
    InvalidParameter,
    StorageFull,
    is_disk_full,
    retry_headers,
)
from earmark.filejobs.runner import JobRunner
from earmark.filejobs.summaries import ConversationSummaries
from earmark.inference.engine import Engine
from earmark.ingest.egress_proxy import EgressProxy
from earmark.ingest.url_safety import parse_networks
from earmark.ingest.webrtc import WebRtcPeers
from earmark.ingest.webrtc import router as webrtc_router
from earmark.ingest.websocket import router as websocket_router
from earmark.metrics import AppMetrics
from earmark.store.db import open_database
from earmark.store.jobs import JobStore
from earmark.store.keys import KeyStore
from earmark.store.live_jobs import LiveJobStore
from earmark.store.tag_collections import TagCollections
from earmark.store.webhooks import Outbox

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Builds the app. ``engine`` is created from ``settings`` when not given."""
    engine = engine or Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = await asyncio.to_thread(open_database, settings.data_dir,
                                               settings.database_url)
        auth.install(app, KeyStore(app.state.db))
        app.state.egress = EgressProxy(parse_networks(settings.url_allow_networks)).start()
        app.state.tag_collections = TagCollections(
            app.state.db, max_per_owner=settings.max_tag_collections)
        app.state.jobs = JobStore(app.state.db)
        app.state.outbox = Outbox(app.state.db)
        app.state.webhook_master = await asyncio.to_thread(load_master_secret, settings)
        app.state.webhooks = WebhookDispatcher(app.state.outbox, settings,
                                               app.state.webhook_master)
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
        try:
            yield
        finally:
            # Live pulls stop first and stay resumable; their last webhooks are already
            # in the outbox.
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

    app = FastAPI(title="Earmark", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = set()
    app.state.draining = False
    app.state.metrics = AppMetrics(engine, app.state.sessions)
    app.state.webrtc = WebRtcPeers(settings.max_webrtc_peers)
    app.state.tag_collections = None  # opened in the lifespan
    app.state.jobs = None
    app.state.job_runner = None
    app.state.live_jobs = None
    app.state.tag_sessions = TaggingSessions(app)
    app.state.stream_jobs = StreamJobs(app)
    app.state.metrics.watch_webrtc(app.state.webrtc)
    # Outermost: keyless bodies and oversize bodies are refused before anything reads them.
    app.add_middleware(RequestGuard, limits=body_limits(settings.max_upload_bytes),
                       state=app.state)
    app.include_router(auth_router)
    app.include_router(websocket_router)
    app.include_router(webrtc_router)
    app.include_router(tag_router)
    app.include_router(sync_router)
    app.include_router(job_router)
    app.include_router(listen_router)
    app.include_router(tag_session_router)
    app.include_router(stream_job_router)
    app.include_router(stream_task_router)
    app.include_router(cluster_router)
    app.include_router(stream_task_router, prefix=SEED_BASE, include_in_schema=False)

    # Errors leave every HTTP route in one shape: {"code", "message", "param"?}.
    @app.exception_handler(EarmarkError)
    async def earmark_error(_request: Request, err: EarmarkError) -> JSONResponse:
        return JSONResponse(err.to_dict(), status_code=err.http_status,
                            headers=retry_headers(err))

    def storage_error(err: Exception) -> JSONResponse:
        # A full disk reaches us from SQLite or a file write anywhere: 507, not a 500.
        if is_disk_full(err):
            logger.error("storage full: %s", err)
            body = StorageFull("the server's disk is full; nothing was stored, retry later")
            return JSONResponse(body.to_dict(), status_code=body.http_status)
        logger.error("unhandled error", exc_info=err)
        return JSONResponse(EarmarkError("internal server error").to_dict(), status_code=500)

    # Database and file errors get their answer here, in the routes' exception layer: the
    # catch-all below answers too, but Starlette re-raises after it, so a 507 was also
    # logged as an ASGI exception.
    @app.exception_handler(OperationalError)
    async def database_error(_request: Request, err: OperationalError) -> JSONResponse:
        return storage_error(err)

    @app.exception_handler(OSError)
    async def file_error(_request: Request, err: OSError) -> JSONResponse:
        return storage_error(err)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, err: Exception) -> JSONResponse:
        return storage_error(err)

    # Routing errors (no such path, wrong method) get the same shape, not {"detail": ...}.
    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        if err.status_code == 404:
            body = {"code": "NOT_FOUND",
                    "message": f"no such route: {where} (the routes are listed at /docs)"}
        elif err.status_code == 405:
            body = {"code": "METHOD_NOT_ALLOWED",
                    "message": f"{where}: method not allowed here"}
        else:
            body = {"code": "HTTP_ERROR", "message": f"{where}: {err.detail}"}
        return JSONResponse(body, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"
        body = InvalidParameter(f"{where}: {first.get('msg', 'invalid request')}",
                                param=where).to_dict()
        return JSONResponse(body, status_code=400)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """200 while this node takes new live sessions; 503 while it loads, drains or is at
        capacity, so a load balancer's health check sends new sessions to other nodes (and
        back here once one ends). The body says which."""
        if not engine.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        streams = sum(getattr(s, "streams", 1) for s in app.state.sessions)
        capacity = engine.capacity()
        status = ("draining" if app.state.draining else
                  "full" if streams >= capacity else "ready")
        return JSONResponse(
            {
                "status": status,
                "model": engine.model_name,
                "device": engine.backend.device if engine.backend else None,
                "sessions": len(app.state.sessions),
                "streams": streams,
                "capacity": capacity,
            },
            status_code=200 if status == "ready" else 503,
        )

    # The try-it page and its static files (shipped in the package; no build step).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/v1/info")
    async def info() -> dict[str, object]:
        return {
            "service": "earmark",
            "version": __version__,
            "live_socket": "/v1/listen",
            "webrtc_offer": "/v1/webrtc/offer",
            "docs": "/docs",
        }

    return app
