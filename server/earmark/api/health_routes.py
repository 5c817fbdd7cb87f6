"""The node's own routes: metrics, liveness, readiness (for a load balancer), the try-it page
and what the service is."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from earmark import __version__
from earmark.api.services import services

router = APIRouter()
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(services(request).metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 while this node takes new live sessions; 503 while it loads, drains or is at
    capacity, so a load balancer's health check sends new sessions to other nodes (and back
    here once one ends). The body says which."""
    svc = services(request)
    engine, sessions = svc.engine, svc.sessions
    if not engine.ready:
        return JSONResponse({"status": "loading"}, status_code=503)
    streams, capacity = sessions.streams, engine.capacity()
    status = ("draining" if sessions.draining else
              "full" if streams >= capacity else "ready")
    return JSONResponse(
        {
            "status": status,
            "model": engine.model_name,
            "device": engine.backend.device if engine.backend else None,
            "sessions": len(sessions),
            "streams": streams,
            "capacity": capacity,
        },
        status_code=200 if status == "ready" else 503,
    )


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


@router.get("/v1/info")
async def info() -> dict[str, object]:
    return {
        "service": "earmark",
        "version": __version__,
        "live_socket": "/v1/listen",
        "webrtc_offer": "/v1/webrtc/offer",
        "docs": "/docs",
    }
