"""One error tree with stable codes, translated once at each edge (HTTP status, close code)."""

from __future__ import annotations

import math


class EarmarkError(Exception):
    """Base error. ``code`` is stable and documented; ``message`` is safe to show a client."""

    code = "INTERNAL_ERROR"
    http_status = 500
    close_code = 1011

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.param is not None:
            body["param"] = self.param
        return body


class InvalidParameter(EarmarkError):
    """A query parameter or request field is unknown or has an invalid value."""

    code = "INVALID_PARAMETER"
    http_status = 400
    close_code = 1008


class BadAudio(EarmarkError):
    """Audio bytes that do not match the declared encoding."""

    code = "BAD_AUDIO"
    http_status = 400
    close_code = 1008


class BadMessage(EarmarkError):
    """A control message that is not JSON or not a known type."""

    code = "BAD_MESSAGE"
    http_status = 400
    close_code = 1008


class FrameTooLarge(EarmarkError):
    code = "FRAME_TOO_LARGE"
    http_status = 413
    close_code = 1009


class PayloadTooLarge(EarmarkError):
    """A request body over its route's limit."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413
    close_code = 1009


class IdleTimeout(EarmarkError):
    """Neither audio nor KeepAlive arrived in time."""

    code = "IDLE_TIMEOUT"
    http_status = 408
    close_code = 1008


class Unauthorized(EarmarkError):
    code = "UNAUTHORIZED"
    http_status = 401
    close_code = 1008


class RateLimited(EarmarkError):
    """The key spent its requests per minute (or its unused tokens); Retry-After says when."""

    code = "RATE_LIMITED"
    http_status = 429
    close_code = 1008

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(EarmarkError):
    """Refused on purpose: the server is at capacity."""

    code = "OVERLOADED"
    http_status = 503
    close_code = 1013


class NotReady(EarmarkError):
    code = "NOT_READY"
    http_status = 503
    close_code = 1013


class StorageFull(EarmarkError):
    """The disk (or the process's file-size limit) is full: nothing was half-written."""

    code = "STORAGE_FULL"
    http_status = 507
    close_code = 1011


FULL_DISK_ERRNOS = frozenset({28, 27, 122})  # ENOSPC, EFBIG, EDQUOT


def is_disk_full(exc: BaseException) -> bool:
    """An OSError from a full disk, or SQLite saying so through SQLAlchemy."""
    if isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS:
        return True
    text = str(exc).lower()
    # SQLite reports a write the file system refused past its size (EFBIG) as an I/O error
    # of its write, not as a full database: storage either way, and a 507 says "retry later".
    return ("database or disk is full" in text or "file too large" in text
            or "disk i/o error" in text)


class RecognitionFailed(EarmarkError):
    """The model call for a request raised; only that request's session is told."""

    code = "RECOGNITION_FAILED"
    http_status = 500
    close_code = 1011


class NotFound(EarmarkError):
    code = "NOT_FOUND"
    http_status = 404
    close_code = 1008


class Conflict(EarmarkError):
    """The request clashes with what exists (a duplicate name, a per-key limit)."""

    code = "CONFLICT"
    http_status = 409
    close_code = 1008


def retry_headers(err: EarmarkError) -> dict[str, str] | None:
    """``Retry-After`` for refusals a client should retry: 429 from the rate, 503 from load."""
    if isinstance(err, RateLimited):
        return {"Retry-After": str(max(1, math.ceil(err.retry_after_s)))}
    if err.http_status == 503:
        return {"Retry-After": "5"}
    return None


class SourceError(EarmarkError):
    """The URL could not be pulled (404, TLS, no audio, gave up reconnecting...)."""

    code = "SOURCE_FAILED"
    http_status = 400
    close_code = 1008


class TooManyJobs(EarmarkError):
    """The key has as many unfinished jobs as it may (seed 003's 429)."""

    code = "TOO_MANY_JOBS"
    http_status = 429
    close_code = 1008

    def to_dict(self) -> dict[str, object]:
        # The seed's documented 429 body, plus our stable code.
        return {"statusCode": 429, "message": self.message, "code": self.code}


class TooManyStreams(EarmarkError):
    code = "TOO_MANY_STREAMS"
    http_status = 429
    close_code = 1008


class SlowConsumer(EarmarkError):
    code = "SLOW_CONSUMER"
    http_status = 429
    close_code = 1008
