"""``POST /v1/auth/grant``: a temporary token for a browser socket (Deepgram's shape).

A backend holding the API key mints a token and hands it to the page; the page opens
``/v1/listen`` (or a WebRTC offer) with it. The token lives ``ttl_seconds`` (default
``--token-ttl-s``) and opens one session; the API key never reaches the browser.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from earmark.api.auth import request_principal
from earmark.api.services import services
from earmark.auth import key_from_request
from earmark.errors import InvalidParameter

router = APIRouter()
MAX_TTL_S = 3600


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # strict: JSON true is not 1 s, nor "30" 30 s
    ttl_seconds: float | None = Field(None, gt=0, le=MAX_TTL_S, strict=True)


class GrantResponse(BaseModel):
    access_token: str
    expires_in: float


@router.post("/v1/auth/grant", response_model=GrantResponse)
async def grant(request: Request, body: GrantRequest | None = None) -> GrantResponse:
    key, _ = key_from_request(request.headers, request.query_params, [])
    if key and key.startswith("emt_"):
        raise InvalidParameter("a temporary token cannot mint another; use an API key",
                               param="Authorization")
    principal = request_principal(request)
    svc = services(request)
    ttl = (body.ttl_seconds if body and body.ttl_seconds else None) or svc.settings.token_ttl_s
    token = svc.access.tokens.mint(principal, ttl)
    return GrantResponse(access_token=token, expires_in=ttl)
