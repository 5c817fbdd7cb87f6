"""API-key checks for HTTP and WebSocket requests (constant-time comparison)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import Request

from earmark.errors import Unauthorized
from earmark.store.tag_collections import owner_of

_SCHEMES = ("token ", "bearer ")


def key_from_request(
    headers: Mapping[str, str], query: Mapping[str, str], subprotocols: list[str]
) -> tuple[str | None, str | None]:
    """Returns (key, subprotocol to accept). Accepted forms: ``Authorization: Token <key>`` or
    ``Bearer <key>``, ``Sec-WebSocket-Protocol: token, <key>`` (browsers), ``?token=<key>``."""
    auth = headers.get("authorization", "")
    for scheme in _SCHEMES:
        if auth.lower().startswith(scheme):
            return auth[len(scheme):].strip(), None
    if len(subprotocols) >= 2 and subprotocols[0].lower() in ("token", "bearer"):
        return subprotocols[1].strip(), subprotocols[0]
    if query.get("token"):
        return query["token"], None
    return None, None


def key_is_valid(key: str | None, keys: list[str]) -> bool:
    if key is None:
        return False
    ok = False
    for candidate in keys:  # no early exit: timing must not reveal which key matched
        ok |= hmac.compare_digest(key.encode(), candidate.encode())
    return ok


def request_owner(request: Request) -> str:
    """The owner id of an HTTP request's key (sha256 of the key; "local" without keys).
    Raises Unauthorized when keys are configured and none valid was given."""
    settings = request.app.state.settings
    key, _ = key_from_request(request.headers, request.query_params, [])
    if settings.api_key_list and not key_is_valid(key, settings.api_key_list):
        raise Unauthorized("a valid API key is required")
    return owner_of(key if settings.api_key_list else None)
