"""Requests-per-minute limits per API key: a token bucket per owner, driven by a given clock.

A key may burst up to its whole minute's allowance, then gets one request back every
``60 / rpm`` seconds. Buckets of idle keys are dropped, so memory is bounded by the keys
active in the last minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, owner: str, rpm: int) -> float:
        """Spends one request of ``owner``'s allowance. Returns 0 when allowed, else the
        seconds until the next request would be."""
        now = self.clock()
        rate = rpm / 60.0
        bucket = self._buckets.get(owner)
        if bucket is None:
            bucket = self._buckets[owner] = _Bucket(float(rpm), now)
        bucket.tokens = min(float(rpm), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if len(self._buckets) > 1024:
            self._forget_idle(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def _forget_idle(self, now: float) -> None:
        # A bucket untouched for a minute is full again: dropping it changes nothing.
        for owner in [o for o, b in self._buckets.items() if now - b.stamp >= 60.0]:
            del self._buckets[owner]
