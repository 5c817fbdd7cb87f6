"""Private tag collections, scoped to the API key that made them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from earmark.errors import Conflict, NotFound
from earmark.inference.tagger import Tag
from earmark.store.db import tag_collections as table


@dataclass(frozen=True)
class Collection:
    name: str
    description: str
    tags: tuple[Tag, ...]
    created: float
    updated: float

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "tags": [t.to_dict() for t in self.tags],
                "created": self.created, "updated": self.updated}


def _tags_json(tags: tuple[Tag, ...]) -> str:
    return json.dumps([t.to_dict() for t in tags])


def _row(row) -> Collection:  # noqa: ANN001
    tags = tuple(Tag(t["name"], t["kind"], t["description"], tuple(t.get("examples", ())),
                     t.get("threshold")) for t in json.loads(row.tags_json))
    return Collection(row.name, row.description, tags, row.created, row.updated)


class TagCollections:
    def __init__(self, db: Engine, *, max_per_owner: int) -> None:
        self.db = db
        self.max_per_owner = max_per_owner

    def create(self, owner: str, name: str, description: str,
               tags: tuple[Tag, ...]) -> Collection:
        now = time.time()
        with self.db.begin() as conn:
            count = conn.execute(select(func.count()).select_from(table)
                                 .where(table.c.owner == owner)).scalar_one()
            if count >= self.max_per_owner:
                raise Conflict(f"at the limit of {self.max_per_owner} tag collections; "
                               "delete one first", param="name")
            try:
                conn.execute(insert(table).values(owner=owner, name=name,
                                                  description=description,
                                                  tags_json=_tags_json(tags), created=now,
                                                  updated=now))
            except IntegrityError:
                raise Conflict(f"a tag collection named {name!r} already exists; PUT to "
                               "replace it", param="name") from None
        return Collection(name, description, tags, now, now)

    def get(self, owner: str, name: str) -> Collection:
        with self.db.connect() as conn:
            row = conn.execute(select(table).where(table.c.owner == owner,
                                                   table.c.name == name)).first()
        if row is None:
            raise NotFound(f"no tag collection named {name!r}")
        return _row(row)

    def list(self, owner: str) -> list[Collection]:
        with self.db.connect() as conn:
            rows = conn.execute(select(table).where(table.c.owner == owner)
                                .order_by(table.c.name)).all()
        return [_row(r) for r in rows]

    def replace(self, owner: str, name: str, description: str,
                tags: tuple[Tag, ...]) -> Collection:
        now = time.time()
        with self.db.begin() as conn:
            done = conn.execute(update(table).where(table.c.owner == owner,
                                                    table.c.name == name)
                                .values(description=description, tags_json=_tags_json(tags),
                                        updated=now))
            if done.rowcount == 0:
                raise NotFound(f"no tag collection named {name!r}")
        return self.get(owner, name)

    def delete(self, owner: str, name: str) -> None:
        with self.db.begin() as conn:
            done = conn.execute(delete(table).where(table.c.owner == owner,
                                                    table.c.name == name))
        if done.rowcount == 0:
            raise NotFound(f"no tag collection named {name!r}")
