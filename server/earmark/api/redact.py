"""Keeps secrets out of logs: API keys and tokens in query strings (``token=``), in
``Authorization`` / ``Sec-WebSocket-Protocol`` / ``x-chatsight-api-auth`` headers (the
websockets library logs handshakes at DEBUG), and source credentials (``url_headers=``).

The filter sits on the root and uvicorn handlers, so it sees every record of every library,
and works on the formatted message, whatever its arguments were."""

from __future__ import annotations

import logging
import re

_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:token|url_headers|api_key)=)[^&\s\"']*", re.I)
_SECRET_HEADER = re.compile(
    r"((?:authorization|x-chatsight-api-auth|proxy-authorization)\s*[:=]\s*)"
    r"(?:(?:token|bearer|basic)\s+)?[^\s,\"']+", re.I)
_SUBPROTOCOL = re.compile(r"(sec-websocket-protocol\s*:\s*(?:token|bearer)\s*,\s*)[^\s,\"']+",
                          re.I)
_KEY_LIKE = re.compile(r"\bem(?:t)?_[A-Za-z0-9_-]{20,}")  # Earmark's own keys and tokens


def redact(text: str) -> str:
    text = _SECRET_QUERY.sub(r"\1***", text)
    text = _SECRET_HEADER.sub(r"\1***", text)
    text = _SUBPROTOCOL.sub(r"\1***", text)
    return _KEY_LIKE.sub("em_***", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the caller's bug, not ours
            return True
        if redact(message) == message:
            return True
        # Redact the parts, not the formatted line: formatters that read the arguments
        # (uvicorn's access log unpacks its five) must still find them.
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        try:
            leaked = redact(record.getMessage()) != record.getMessage()
        except Exception:  # noqa: BLE001
            leaked = True
        if leaked:  # a secret built across parts: fall back to the whole line, redacted
            record.msg, record.args = redact(message), None
        return True


def install() -> None:
    """Call after logging is configured (uvicorn sets up its own handlers)."""
    redactor = RedactSecrets()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "websockets"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(redactor)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(redactor)
