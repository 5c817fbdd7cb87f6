"""The HTTP caller: the key forms of ``earmark.auth`` read from a request, rate-limited."""

from __future__ import annotations

from fastapi import Request

from earmark.auth import Principal, authenticate, key_from_request, spend_request
from earmark.ingest.services import live_services


def request_principal(request: Request, key: str | None = None) -> Principal:
    """The HTTP caller (rate-limited). ``key`` overrides the usual key forms."""
    if key is None:
        key, _ = key_from_request(request.headers, request.query_params, [])
    access = live_services(request.app).access
    principal = authenticate(access, key)
    spend_request(access, principal)
    return principal


def request_owner(request: Request) -> str:
    return request_principal(request).owner
