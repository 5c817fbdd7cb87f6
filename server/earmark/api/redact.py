"""Keeps secrets out of logs: query values such as ``token=`` and ``url_headers=`` are masked
in uvicorn's access and connection lines (they carry API keys and source credentials)."""

from __future__ import annotations

import logging
import re

_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:token|url_headers|api_key)=)[^&\s\"']*", re.I)


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(RedactSecrets())
