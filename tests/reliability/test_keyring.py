"""The key ring and token issuer on their own, with a real SQLite file and a fake clock."""

from __future__ import annotations

import hashlib

import pytest

from earmark.auth import KeyRing, Principal, TokenIssuer, limit
from earmark.config import Settings
from earmark.errors import RateLimited
from earmark.store.db import open_database
from earmark.store.keys import KeyLimits, KeyStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def store(tmp_path, database_url):
    db = open_database(tmp_path, database_url)
    yield KeyStore(db)
    db.dispose()


def test_stored_keys_appear_and_disappear_after_the_refresh(store):
    clock = Clock()
    ring = KeyRing(Settings(), store, clock=clock, refresh_s=2.0)
    assert not ring.required
    key, record = store.create("app", KeyLimits(rpm=5, max_jobs=1))
    assert not ring.required  # read 0 s ago: the cached view
    clock.now += 2.0
    found = ring.lookup(key)
    assert found is not None and found.limits.rpm == 5 and found.name == "app"
    assert ring.lookup(key + "x") is None and ring.lookup(None) is None
    store.revoke(record.key_id)
    clock.now += 2.0
    assert ring.lookup(key) is None


def test_configured_keys_may_be_given_as_their_hash(store):
    digest = hashlib.sha256(b"plain-secret").hexdigest()
    ring = KeyRing(Settings(api_keys=f"sha256:{digest},other-key"), store)
    assert ring.lookup("plain-secret") is not None
    assert ring.lookup("other-key") is not None
    assert ring.lookup(f"sha256:{digest}") is None  # the hash itself is not a key


def test_a_key_own_limits_override_the_server_defaults():
    s = Settings(max_jobs_per_key=10, rpm_per_key=600)
    own = Principal("o", "o", KeyLimits(rpm=5, max_jobs=1))
    default = Principal("p", "p")
    assert limit(s, own, "max_jobs") == 1 and limit(s, default, "max_jobs") == 10
    assert limit(s, own, "rpm") == 5 and limit(s, default, "rpm") == 600
    assert limit(s, default, "max_sessions") == s.max_sessions_per_key


def test_tokens_are_single_use_expire_and_are_bounded():
    clock = Clock()
    tokens = TokenIssuer(clock, max_outstanding=3)
    who = Principal("owner", "app")
    token = tokens.mint(who, ttl_s=30)
    assert tokens.redeem(token) == who
    assert tokens.redeem(token) is None  # used
    late = tokens.mint(who, ttl_s=30)
    clock.now += 31
    assert tokens.redeem(late) is None  # expired
    for _ in range(3):
        tokens.mint(who, ttl_s=30)
    with pytest.raises(RateLimited):
        tokens.mint(who, ttl_s=30)
    clock.now += 31  # expired ones make room again
    assert tokens.mint(who, ttl_s=30).startswith("emt_")
