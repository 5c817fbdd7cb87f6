"""The first thing every HTTP request meets: the key is checked and the body size bounded
before a byte of the body is read.

Routes parse their bodies before they look at the caller (FastAPI validates a JSON body
before the handler runs), so without this a keyless 12 MB JSON body was parsed on the event
loop for 8 s before its 401, and a 200 MB body was held in memory. Here, where keys are
configured, a request with a body and no valid key is refused with 401 at once; a body over
its route's limit is refused with 413, on its Content-Length when it declares one and while
it streams in when it does not. The routes still authenticate the caller themselves (rate
limits, token redemption, owners); this only refuses early.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from earmark.auth import TOKEN_PREFIX, Access, key_from_request
from earmark.errors import EarmarkError, PayloadTooLarge, Unauthorized

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

KIB, MIB = 1 << 10, 1 << 20
# 15 s of 8-channel 48 kHz 16-bit WAV, base64-encoded, with room for the JSON around it.
SYNC_BODY_BYTES = 16 * MIB
DEFAULT_BODY_BYTES = 1 * MIB


@dataclass(frozen=True)
class BodyLimit:
    path: str  # exact path, or a prefix when it ends with "/"
    max_bytes: int
    tokens: bool = False  # a temporary socket token may call it (the WebRTC offer)

    def matches(self, path: str) -> bool:
        return path.startswith(self.path) if self.path.endswith("/") else path == self.path


FORM_OVERHEAD_BYTES = 64 * KIB


def body_limits(max_upload_bytes: int) -> list[BodyLimit]:
    """Per-route body limits (docs/security.md lists them); others get 1 MiB."""
    return [
        BodyLimit("/v1/process/audio", max_upload_bytes),
        BodyLimit("/v1/process/audio/", max_upload_bytes),
        BodyLimit("/v1/listen", max_upload_bytes),  # Deepgram pre-recorded: a file
        # OpenAI's audio API: the file in a multipart form, with a few small fields
        BodyLimit("/v1/audio/transcriptions", max_upload_bytes + FORM_OVERHEAD_BYTES),
        BodyLimit("/v1/audio/translations", max_upload_bytes + FORM_OVERHEAD_BYTES),
        BodyLimit("/v2/stream", SYNC_BODY_BYTES),
        BodyLimit("/v1/auth/grant", 64 * KIB),
        BodyLimit("/v1/webrtc/offer", 256 * KIB, tokens=True),
    ]


def _has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length", "0").strip()
    return "chunked" in headers.get("transfer-encoding", "").lower() or length not in ("", "0")


class RequestGuard:
    """ASGI middleware around the whole app (see the module docstring)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *,
                 limits: list[BodyLimit], access: Callable[[], Access | None],
                 default_bytes: int = DEFAULT_BODY_BYTES) -> None:
        self.app = app
        self.limits = limits
        self.access = access  # the app's keys and tokens (None until the lifespan built them)
        self.default_bytes = default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        rule = next((r for r in self.limits if r.matches(scope["path"])), None)
        limit = rule.max_bytes if rule else self.default_bytes
        if _has_body(headers):
            refusal = self._refuse_keyless(scope, headers, rule)
            if refusal is not None:
                await _reply(send, refusal)
                return
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            await _reply(send, PayloadTooLarge(
                f"the body is {int(declared)} bytes; this route takes at most {limit}"))
            return
        await self._counted(scope, receive, send, limit)

    def _refuse_keyless(self, scope: Scope, headers: dict[str, str],
                        rule: BodyLimit | None) -> EarmarkError | None:
        access = self.access()
        if access is None or not access.keys.required:
            return None  # starting up, or a keyless loopback server
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        key, _ = key_from_request(headers, query, [])
        key = key or headers.get("x-chatsight-api-auth")
        if key and key.startswith(TOKEN_PREFIX):
            if rule is not None and rule.tokens and access.tokens.known(key):
                return None
        elif access.keys.lookup(key) is not None:
            return None
        return Unauthorized("a valid API key is required")

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Counts a body that streams in; past ``limit`` the app sees a disconnect and the
        client gets 413 in place of whatever the app answers to that."""
        seen = 0
        tripped = False
        started = False

        async def counted_receive() -> Message:
            nonlocal seen, tripped
            if tripped:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    tripped = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped:
                if not started:
                    started = True
                    await _reply(send, PayloadTooLarge(
                        f"the body is over this route's limit of {limit} bytes"))
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)
        if tripped and not started:
            await _reply(send, PayloadTooLarge(
                f"the body is over this route's limit of {limit} bytes"))


async def _reply(send: Send, err: EarmarkError) -> None:
    body = orjson.dumps(err.to_dict())
    await send({"type": "http.response.start", "status": err.http_status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
