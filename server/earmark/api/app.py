"""The ASGI app: models load in the lifespan, routes are thin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from earmark import __version__
from earmark.api.metrics import AppMetrics
from earmark.config import Settings
from earmark.inference.engine import Engine
from earmark.ingest.websocket import router as websocket_router

logger = logging.getLogger(__name__)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Builds the app. ``engine`` is created from ``settings`` when not given."""
    engine = engine or Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(engine.load)
        try:
            yield
        finally:
            engine.close()

    app = FastAPI(title="Earmark", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = set()
    app.state.draining = False
    app.state.metrics = AppMetrics(engine, app.state.sessions)
    app.include_router(websocket_router)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not engine.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse(
            {
                "status": "ready",
                "model": engine.model_name,
                "device": engine.backend.device if engine.backend else None,
                "sessions": len(app.state.sessions),
                "capacity": engine.capacity(),
            }
        )

    @app.get("/")
    async def index() -> dict[str, object]:
        return {
            "service": "earmark",
            "version": __version__,
            "live_socket": "/v1/listen",
            "docs": "/docs",
        }

    return app
