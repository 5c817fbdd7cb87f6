"""Who is calling: API keys (hashed at rest), temporary socket tokens, per-key request rates.

Every transport (HTTP routes, sockets, WebRTC) shares this; ``api/auth.py`` reads it from an
HTTP request.

Keys come from ``earmark keys create`` (SQLite, SHA-256 only) or ``--api-keys`` (plain keys,
or ``sha256:<hex>`` so a config file need not hold the key). Every stored object is scoped by
the key's hash (``Principal.owner``); another key's objects are 404. Comparisons are
constant-time over every known hash; keys and tokens are never logged.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from earmark.config import Settings
from earmark.core.rate_limit import RateLimiter
from earmark.errors import RateLimited, Unauthorized
from earmark.store.keys import KeyLimits, KeyRecord, KeyStore, hash_key

_SCHEMES = ("token ", "bearer ")
TOKEN_PREFIX = "emt_"
LOCAL = "local"  # the owner of everything when no keys are configured


@dataclass(frozen=True)
class Principal:
    owner: str  # sha256 of the key ("local" without keys): what stored objects belong to
    label: str  # safe to log: the key's name and public id
    limits: KeyLimits = KeyLimits()


def key_from_request(
    headers: Mapping[str, str], query: Mapping[str, str], subprotocols: list[str]
) -> tuple[str | None, str | None]:
    """Returns (key, subprotocol to accept). Accepted forms: ``Authorization: Token <key>`` or
    ``Bearer <key>``; ``Authorization: <key>`` with no scheme (AssemblyAI's form, used by
    seeds 002 and 004); ``x-api-key: <key>`` (seed 003's older header);
    ``Sec-WebSocket-Protocol: token, <key>`` (browsers); ``?token=<key>``."""
    auth = headers.get("authorization", "").strip()
    for scheme in _SCHEMES:
        if auth.lower().startswith(scheme):
            return auth[len(scheme):].strip(), None
    if auth and " " not in auth:
        return auth, None  # a bare key; "Basic ..." and other schemes are not keys
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip(), None
    if len(subprotocols) >= 2 and subprotocols[0].lower() in ("token", "bearer"):
        return subprotocols[1].strip(), subprotocols[0]
    if query.get("token"):
        return query["token"], None
    return None, None


def _digest_in(digest: str, digests: list[str]) -> str | None:
    found = None
    for candidate in digests:  # no early exit: timing must not reveal which key matched
        if hmac.compare_digest(digest.encode(), candidate.encode()):
            found = candidate
    return found


def key_in(key: str, digests: list[str]) -> bool:
    """Whether ``key`` is one of ``digests`` (sha256 hex), compared in constant time."""
    return _digest_in(hash_key(key), digests) is not None


class KeyRing:
    """The keys the server accepts: those in settings plus the store's (re-read every
    ``refresh_s``, so ``earmark keys create/revoke`` take effect on a running server)."""

    def __init__(self, settings: Settings, store: KeyStore | None,
                 clock: Callable[[], float] = time.monotonic, refresh_s: float = 2.0) -> None:
        self.store = store
        self.clock = clock
        self.refresh_s = refresh_s
        self._static: dict[str, KeyRecord] = {}
        for entry in settings.api_key_list:
            digest = entry[7:].lower() if entry.lower().startswith("sha256:") else hash_key(entry)
            self._static[digest] = KeyRecord(digest, digest[:12], "configured", 0.0, None,
                                             KeyLimits())
        self._stored: dict[str, KeyRecord] = {}
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def _records(self) -> dict[str, KeyRecord]:
        if self.store is not None and self.clock() - self._read_at >= self.refresh_s:
            self.refresh()
        return {**self._stored, **self._static}

    def refresh(self) -> None:
        """Reads the store now (the revocation watcher calls it every second)."""
        if self.store is None:
            return
        with self._lock:
            self._stored = {r.key_hash: r for r in self.store.all() if r.revoked is None}
            self._read_at = self.clock()

    def is_active(self, owner: str) -> bool:
        """Whether the key behind ``owner`` still works (``local``: only while no keys)."""
        records = self._records()
        return owner in records if records else owner == LOCAL

    @property
    def required(self) -> bool:
        return bool(self._records())

    def lookup(self, key: str | None) -> KeyRecord | None:
        if not key:
            return None
        records = self._records()
        found = _digest_in(hash_key(key), list(records))
        return records[found] if found else None


class TokenIssuer:
    """Short-lived, single-use socket tokens, minted by an authenticated call. Kept in memory
    (a restart voids them, which costs a browser one retry); only their hashes are held."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 max_outstanding: int = 10_000) -> None:
        self.clock = clock
        self.max_outstanding = max_outstanding
        self._tokens: dict[str, tuple[Principal, float]] = {}

    def mint(self, principal: Principal, ttl_s: float) -> str:
        now = self.clock()
        for digest in [d for d, (_, exp) in self._tokens.items() if exp <= now]:
            del self._tokens[digest]
        if len(self._tokens) >= self.max_outstanding:
            raise RateLimited("too many unused temporary tokens; use or let some expire",
                              retry_after_s=ttl_s)
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        self._tokens[hash_key(token)] = (principal, now + ttl_s)
        return token

    def known(self, token: str) -> bool:
        """An unexpired token (not redeemed): lets its request past the body guard."""
        entry = self._tokens.get(hash_key(token))
        return entry is not None and entry[1] > self.clock()

    def redeem(self, token: str) -> Principal | None:
        entry = self._tokens.pop(hash_key(token), None)  # single use: gone whatever happens
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]


@dataclass(frozen=True)
class Access:
    """Who may call, for every transport: the key ring, the temporary socket tokens and the
    per-key request rate, with the server's defaults for a key's limits."""

    settings: Settings
    keys: KeyRing
    tokens: TokenIssuer
    rate_limiter: RateLimiter

    @classmethod
    def open(cls, settings: Settings, store: KeyStore | None) -> Access:
        return cls(settings, KeyRing(settings, store), TokenIssuer(), RateLimiter(time.monotonic))


class Revocable(Protocol):
    """A live session that a revoked key ends (``live/session.LiveSession``)."""

    @property
    def owner(self) -> str | None: ...

    def revoke(self, err: Unauthorized) -> None: ...


def authenticate(access: Access, key: str | None, *, allow_token: bool = False) -> Principal:
    """The caller behind ``key``. Temporary tokens count only where ``allow_token`` (sockets).
    Raises Unauthorized."""
    ring = access.keys
    if allow_token and key and key.startswith(TOKEN_PREFIX):
        principal = access.tokens.redeem(key)
        if principal is None:
            raise Unauthorized("the temporary token is unknown, used or expired")
        if not ring.is_active(principal.owner):
            raise Unauthorized("the API key that minted this token was revoked")
        return principal
    if not ring.required:
        return Principal(LOCAL, LOCAL)
    record = ring.lookup(key)
    if record is None:
        raise Unauthorized("a valid API key is required")
    return Principal(record.key_hash, f"{record.name}:{record.key_id}", record.limits)


REVOCATION_CHECK_S = 1.0


async def end_revoked_sessions(ring: KeyRing, sessions: Iterable[Revocable],
                               every_s: float = REVOCATION_CHECK_S) -> None:
    """Runs for the server's life: every ``every_s``, re-reads the keys and ends the live
    sessions (sockets, WebRTC peers) of a key that was revoked, with ``Error``
    ``UNAUTHORIZED`` and close 1008, after the results already decided."""
    import asyncio

    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(ring.refresh)
        except Exception:  # noqa: BLE001 - a locked or full database: try again next time
            continue
        for session in list(sessions):
            owner = session.owner
            if owner is not None and not ring.is_active(owner):
                session.revoke(Unauthorized("the API key of this session was revoked"))


def limit(settings: Settings, principal: Principal, name: str) -> int:
    """A per-key limit: the key's own, else the server's ``<name>_per_key`` default."""
    own = getattr(principal.limits, name)
    return int(own) if own is not None else int(getattr(settings, f"{name}_per_key"))


def spend_request(access: Access, principal: Principal) -> None:
    """Counts one request against the key's rate. Raises RateLimited (429, Retry-After)."""
    if principal.owner == LOCAL:
        return  # no keys: a loopback server for one user, nothing to share fairly
    rpm = limit(access.settings, principal, "rpm")
    if rpm <= 0:
        return
    wait = access.rate_limiter.take(principal.owner, rpm)
    if wait > 0:
        raise RateLimited(f"more than {rpm} requests per minute for this key",
                          retry_after_s=wait)
