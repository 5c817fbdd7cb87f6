"""API keys at rest: the SHA-256 of each key, its name and its limits (``earmark keys``).

Keys are 32 random bytes, so a plain SHA-256 is enough (no salt or slow hash: nothing to
brute-force). A row's ``owner`` is the hash, the same id every stored object is scoped by.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from earmark.errors import NotFound
from earmark.store.db import api_keys

KEY_PREFIX = "em_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyLimits:
    """Per-key limits; None means the server's default."""

    rpm: int | None = None
    max_sessions: int | None = None
    max_jobs: int | None = None
    max_streams: int | None = None


@dataclass(frozen=True)
class KeyRecord:
    key_hash: str
    key_id: str
    name: str
    created: float
    revoked: float | None
    limits: KeyLimits


class KeyStore:
    def __init__(self, db: Engine) -> None:
        self.db = db

    def create(self, name: str, limits: KeyLimits = KeyLimits()) -> tuple[str, KeyRecord]:
        """Makes a key. Returns (the key, shown only now, and its record)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(hash_key(key), secrets.token_hex(6), name, time.time(), None, limits)
        with self.db.begin() as conn:
            conn.execute(insert(api_keys).values(
                key_hash=record.key_hash, key_id=record.key_id, name=name,
                created=record.created, rpm=limits.rpm, max_sessions=limits.max_sessions,
                max_jobs=limits.max_jobs, max_streams=limits.max_streams))
        return key, record

    def revoke(self, key_id: str) -> None:
        with self.db.begin() as conn:
            done = conn.execute(update(api_keys).where(api_keys.c.key_id == key_id,
                                                       api_keys.c.revoked.is_(None))
                                .values(revoked=time.time()))
        if done.rowcount == 0:
            raise NotFound(f"no active key with id {key_id!r}")

    def all(self) -> list[KeyRecord]:
        with self.db.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created)).all()
        return [KeyRecord(r.key_hash, r.key_id, r.name, r.created, r.revoked,
                          KeyLimits(r.rpm, r.max_sessions, r.max_jobs, r.max_streams))
                for r in rows]
