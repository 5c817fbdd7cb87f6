"""API-key checks for HTTP and WebSocket requests (constant-time comparison)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

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
