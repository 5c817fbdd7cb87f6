"""``GET /tags`` (the default catalogue) and ``/v1/tag-collections`` (private collections)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from earmark.api.auth import request_owner
from earmark.api.services import services
from earmark.dialects.deepgram import COLLECTION_NAME
from earmark.errors import InvalidParameter, NotReady
from earmark.inference.tagger import Tag
from earmark.store.tag_collections import TagCollections

router = APIRouter()

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: Literal["topic", "mood"]
    description: Text
    examples: list[Annotated[str, StringConstraints(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=20)
    threshold: float | None = Field(None, gt=0, lt=1, description="calibrated cosine bar for "
                                    "a topic (default 0.25)")


class CollectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=500)
    tags: list[TagIn] = Field(min_length=1)


class CollectionIn(CollectionBody):
    name: str = Field(pattern=COLLECTION_NAME.pattern)


def _owner(request: Request) -> str:
    return request_owner(request)


def _tags(request: Request, body: CollectionBody) -> tuple[Tag, ...]:
    limit = services(request).settings.max_tags_per_collection
    if len(body.tags) > limit:
        raise InvalidParameter(f"{len(body.tags)} tags is over the limit of {limit}",
                               param="tags")
    seen: set[str] = set()
    for t in body.tags:
        if t.name.lower() in seen:
            raise InvalidParameter(f"tag name {t.name!r} appears twice", param="tags")
        seen.add(t.name.lower())
    return tuple(Tag(t.name, t.kind, t.description, tuple(t.examples), t.threshold)
                 for t in body.tags)


def _store(request: Request) -> TagCollections:
    store = services(request).tag_collections
    if store is None:
        raise NotReady("the database is not open yet")
    return store


@router.get("/tags")
async def default_tags(request: Request) -> dict:
    """The documented tags of the default catalogue."""
    engine = services(request).engine
    return {"collection": "default", "tagging": engine.tag_worker is not None,
            "tags": [t.to_dict() for t in engine.catalogue]}


@router.post("/v1/tag-collections", status_code=201)
async def create_collection(request: Request, body: CollectionIn) -> dict:
    owner, tags = _owner(request), _tags(request, body)
    made = await asyncio.to_thread(_store(request).create, owner, body.name, body.description,
                                   tags)
    return made.to_dict()


@router.get("/v1/tag-collections")
async def list_collections(request: Request) -> dict:
    owner = _owner(request)
    rows = await asyncio.to_thread(_store(request).list, owner)
    return {"collections": [{"name": c.name, "description": c.description,
                             "tags": len(c.tags), "created": c.created, "updated": c.updated}
                            for c in rows]}


@router.get("/v1/tag-collections/{name}")
async def get_collection(request: Request, name: str) -> dict:
    owner = _owner(request)
    return (await asyncio.to_thread(_store(request).get, owner, name)).to_dict()


@router.put("/v1/tag-collections/{name}")
async def replace_collection(request: Request, name: str, body: CollectionBody) -> dict:
    owner, tags = _owner(request), _tags(request, body)
    done = await asyncio.to_thread(_store(request).replace, owner, name, body.description, tags)
    return done.to_dict()


@router.delete("/v1/tag-collections/{name}", status_code=204)
async def delete_collection(request: Request, name: str) -> Response:
    owner = _owner(request)
    await asyncio.to_thread(_store(request).delete, owner, name)
    return Response(status_code=204)
