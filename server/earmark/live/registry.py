"""The app's live sessions, of every ingest: what is counted once, and how they drain.

Sockets, WebRTC peers, URL pulls, stream jobs and tagging sessions all sit here while they
run. Capacity counts streams (a multichannel session is one per channel), the URL-pull limit
counts sessions that pull, per-key limits count a key's sessions; shutdown drains them all.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Protocol

from earmark.errors import EarmarkError, Overloaded, RateLimited


class RegisteredSession(Protocol):
    """What the registry, the metrics, the heartbeat and key revocation read of a session."""

    owner: str | None  # the API key's owner (None: a session the server runs for a job)
    streams: int  # streams for the model: 1, or the channel count
    pulls_url: bool
    finished: asyncio.Event

    @property
    def lag_s(self) -> float: ...

    @property
    def partials_shed(self) -> bool: ...

    def drain(self) -> None:
        """Server shutdown: stop taking audio, deliver every final, then end."""

    def revoke(self, err: EarmarkError) -> None:
        """The key was revoked: the results so far, then ``err``."""


class SessionRegistry:
    def __init__(self, capacity: Callable[[], int], max_url_pulls: int,
                 on_refused: Callable[[], None] | None = None) -> None:
        self._capacity = capacity
        self.max_url_pulls = max_url_pulls
        self.on_refused = on_refused  # counts a refusal (the app's metrics)
        self._sessions: set[RegisteredSession] = set()
        self.draining = False  # set at shutdown: new sessions are refused
        # Live sessions per key on the other nodes of a shared database, as of the cluster
        # heartbeat's last read (at most ~2 s old): per-key limits count them too.
        self.elsewhere: dict[str, int] = {}

    def __iter__(self) -> Iterator[RegisteredSession]:
        return iter(list(self._sessions))

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: RegisteredSession) -> None:
        self._sessions.add(session)

    def discard(self, session: RegisteredSession) -> None:
        self._sessions.discard(session)

    @property
    def streams(self) -> int:
        return sum(s.streams for s in self._sessions)

    @property
    def url_pulls(self) -> int:
        return sum(1 for s in self._sessions if s.pulls_url)

    def per_owner(self) -> dict[str, int]:
        return dict(Counter(s.owner for s in self._sessions if s.owner is not None))

    def of_owner(self, owner: str) -> int:
        return sum(1 for s in self._sessions if s.owner == owner)

    def over_key_limit(self, owner: str, most: int) -> EarmarkError | None:
        """Refusal for one more session of ``owner``'s key, here and on the other nodes."""
        elsewhere = self.elsewhere.get(owner, 0)
        if self.of_owner(owner) + elsewhere < most:
            return None
        where = f" ({elsewhere} on other nodes)" if elsewhere else ""
        return RateLimited(f"this key already has {most} live sessions open{where}",
                           retry_after_s=5.0)

    def over_capacity(self, streams: int = 1) -> EarmarkError | None:
        """Refusal for a new session of ``streams`` streams, or None when it fits."""
        capacity = self._capacity()
        if self.streams + streams > capacity:
            if self.on_refused is not None:
                self.on_refused()
            return Overloaded(
                f"the server is at its capacity of {capacity} live sessions; retry later")
        return None

    def over_pull_limit(self) -> EarmarkError | None:
        if self.url_pulls >= self.max_url_pulls:
            return Overloaded(f"at the limit of {self.max_url_pulls} URL pulls")
        return None

    async def drain(self, timeout_s: float) -> int:
        """Asks every session to finish and waits up to ``timeout_s``. Returns how many were
        still running at the deadline (the server cancels them next)."""
        self.draining = True
        sessions = list(self._sessions)
        for session in sessions:
            session.drain()
        if not sessions:
            return 0
        waits = [asyncio.ensure_future(s.finished.wait()) for s in sessions]
        _, pending = await asyncio.wait(waits, timeout=timeout_s)
        for task in pending:
            task.cancel()
        return len(pending)
