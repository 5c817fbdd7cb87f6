"""Seeds 000/001's wire shapes: the tagging-session request and its one-shot webhook.

The webhook's ``hmac`` is base64(HMAC-SHA256(secret, "<time>." + canonical payload)): the
body's ``time`` (ms) in decimal, a dot, then the ``payload`` object as compact JSON with sorted
keys (UTF-8, no spaces). Signing the time lets a receiver refuse a replayed delivery (an old
``time``); the payload alone could be replayed with a fresh one. Each attempt is signed anew.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from earmark.core.events import Tags

SENDER = "chatsight-webhooks"  # as documented, so existing receivers accept it
ADDON = "ssiQuery"


class TagSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=4096, description="a live media URL (HLS, "
                     "RTMP, RTSP, HTTP mp4/ts/ogg/aac); video is demuxed for its audio only")
    # It is a path segment of GET /stream/tag/{convoId}: a "/" or a dot segment could never
    # be read back (``../../etc/passwd`` was accepted).
    convoId: str = Field(min_length=1, max_length=200,  # noqa: N815 - the seed's names
                         pattern=r"^[A-Za-z0-9._~:@!$&'()*+,;=-]+$",
                         description="reusing one overwrites the earlier entry; letters, "
                         "digits and URL-safe punctuation, no '/'")
    webhook: str | None = Field(None, max_length=4096, description="one-shot result webhook")
    tagCollection: str | None = Field(  # noqa: N815 - the seed's naming style
        None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="one of this key's "
        "private tag collections (/v1/tag-collections) instead of the default catalogue")

    @field_validator("convoId")
    @classmethod
    def _not_a_dot_segment(cls, value: str) -> str:
        if value in (".", ".."):
            raise ValueError("convoId cannot be '.' or '..'")
        return value
    seedSentence: str | None = Field(None, max_length=2000)  # noqa: N815
    authorization: str | None = Field(None, max_length=4096, description="a Bearer value "
                                      "sent to the stream target")


class TagSessionOut(BaseModel):
    convoId: str  # noqa: N815
    state: str = Field(description="listening | completed | failed")
    reason: str | None = None
    tags: str | None = Field(None, description="comma-separated, as in the webhook")
    undocumentedTags: bool | None = Field(None, description="whether tags outside the "  # noqa: N815
                                          "documented list were found")
    undocumentedTagNames: str | None = Field(None, description="those tags, "  # noqa: N815
                                             "comma-separated")
    transcript: str | None = None
    speechSeconds: float | None = None  # noqa: N815
    heardSeconds: float | None = None  # noqa: N815
    tagReason: str | None = Field(None, description="insufficient_speech after a lull")  # noqa: N815
    startedAt: float  # noqa: N815
    finishedAt: float | None = None  # noqa: N815


def tag_fields(tags: Tags | None) -> tuple[str, str]:
    """(tags, undocumented tag names), comma-separated; either may be empty."""
    if tags is None:
        return "", ""
    return (",".join(t.name for t in tags.tags), ",".join(t.name for t in tags.undocumented))


def canonical(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def payload_hmac(secret: str, payload: dict[str, Any], time_ms: int) -> str:
    signed = str(time_ms).encode() + b"." + canonical(payload)
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def webhook_payload(*, tags: str, undocumented: str, convo_id: str) -> dict[str, Any]:
    """The seed's payload: ``undocumentedTags`` stays the boolean the seed shows; the names
    of such tags, when there are any, go in ``undocumentedTagNames``."""
    return {"tags": tags, "undocumentedTags": bool(undocumented),
            "undocumentedTagNames": undocumented, "convoId": convo_id}


def webhook_body(secret: str, payload: dict[str, Any], time_ms: int) -> str:
    return orjson.dumps({"sender": SENDER, "addon": ADDON, "payload": payload,
                         "time": time_ms, "hmac": payload_hmac(secret, payload, time_ms)}).decode()


def restamp(body: str, secret: str, time_ms: int) -> str:
    """The same delivery signed at ``time_ms``: each attempt (a retry hours later included)
    carries its own time, so receivers can refuse old times without refusing retries."""
    return webhook_body(secret, orjson.loads(body)["payload"], time_ms)
