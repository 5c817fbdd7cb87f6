"""Every HTTP route's errors in one shape, ``{"code", "message", "param"?}``: Earmark's own,
a full disk (507), routing errors (404/405) and invalid bodies (400), never FastAPI's
``{"detail": ...}`` and never internal text."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from earmark.errors import (
    EarmarkError,
    InvalidParameter,
    StorageFull,
    is_disk_full,
    retry_headers,
)

logger = logging.getLogger(__name__)


def _storage_error(err: Exception) -> JSONResponse:
    # A full disk reaches us from SQLite or a file write anywhere: 507, not a 500.
    if is_disk_full(err):
        logger.error("storage full: %s", err)
        body = StorageFull("the server's disk is full; nothing was stored, retry later")
        return JSONResponse(body.to_dict(), status_code=body.http_status)
    logger.error("unhandled error", exc_info=err)
    return JSONResponse(EarmarkError("internal server error").to_dict(), status_code=500)


async def _earmark_error(_request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, EarmarkError)
    return JSONResponse(err.to_dict(), status_code=err.http_status, headers=retry_headers(err))


async def _unexpected(_request: Request, err: Exception) -> JSONResponse:
    return _storage_error(err)


async def _routing_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, StarletteHTTPException)
    where = f"{request.method} {request.url.path}"
    if err.status_code == 404:
        body = {"code": "NOT_FOUND",
                "message": f"no such route: {where} (the routes are listed at /docs)"}
    elif err.status_code == 405:
        body = {"code": "METHOD_NOT_ALLOWED", "message": f"{where}: method not allowed here"}
    else:
        body = {"code": "HTTP_ERROR", "message": f"{where}: {err.detail}"}
    return JSONResponse(body, status_code=err.status_code, headers=err.headers)


async def _invalid_body(_request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    first = err.errors()[0] if err.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"
    body = InvalidParameter(f"{where}: {first.get('msg', 'invalid request')}",
                            param=where).to_dict()
    return JSONResponse(body, status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EarmarkError, _earmark_error)
    # Database and file errors get their answer here, in the routes' exception layer: the
    # catch-all answers too, but Starlette re-raises after it, so a 507 was also logged as
    # an ASGI exception.
    app.add_exception_handler(OperationalError, _unexpected)
    app.add_exception_handler(OSError, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(StarletteHTTPException, _routing_error)
    app.add_exception_handler(RequestValidationError, _invalid_body)
