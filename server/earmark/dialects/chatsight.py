"""Seeds 000/001's wire shapes: the tagging-session request and its one-shot webhook.

The webhook's ``hmac`` is base64(HMAC-SHA256(secret, canonical payload)), where the canonical
payload is the ``payload`` object as compact JSON with sorted keys (UTF-8, no spaces).
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
    undocumentedTags: str | bool | None = None  # noqa: N815
    transcript: str | None = None
    speechSeconds: float | None = None  # noqa: N815
    heardSeconds: float | None = None  # noqa: N815
    tagReason: str | None = Field(None, description="insufficient_speech after a lull")  # noqa: N815
    startedAt: float  # noqa: N815
    finishedAt: float | None = None  # noqa: N815


def tag_fields(tags: Tags | None) -> tuple[str, str | bool]:
    """(tags, undocumentedTags) as the webhook writes them."""
    if tags is None:
        return "", False
    names = ",".join(t.name for t in tags.tags)
    extra = ",".join(t.name for t in tags.undocumented)
    return names, extra or False


def canonical(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def payload_hmac(secret: str, payload: dict[str, Any]) -> str:
    mac = hmac.new(secret.encode(), canonical(payload), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def webhook_body(secret: str, *, tags: str, undocumented: str | bool, convo_id: str,
                 time_ms: int) -> str:
    payload = {"tags": tags, "undocumentedTags": undocumented, "convoId": convo_id}
    return orjson.dumps({"sender": SENDER, "addon": ADDON, "payload": payload,
                         "time": time_ms, "hmac": payload_hmac(secret, payload)}).decode()
