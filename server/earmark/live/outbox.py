"""Bounded outbound queue for one client: interims collapse, finals are never dropped."""

from __future__ import annotations

import asyncio
from collections import deque

from earmark.errors import SlowConsumer


class Outbox:
    """Messages waiting for the socket. A pending interim is replaced by a newer one; past
    ``max_messages`` unsent messages the client is too slow and the stream is closed."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._queue: deque[tuple[bytes, bool, int]] = deque()
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sending = False

    def put(self, message: bytes, *, interim: bool = False, channel: int = 0) -> None:
        """``channel``: an interim replaces only a pending interim of its own channel."""
        if interim and self._queue and self._queue[-1][1] and self._queue[-1][2] == channel:
            self._queue[-1] = (message, True, channel)
        else:
            if len(self._queue) >= self.max_messages:
                raise SlowConsumer(
                    f"{len(self._queue)} messages unread: the client is not reading results"
                )
            self._queue.append((message, interim, channel))
        self._idle.clear()
        self._ready.set()

    async def get(self) -> bytes:
        """Next message; call ``sent()`` once it is written."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        self._sending = True
        return self._queue.popleft()[0]

    def sent(self) -> None:
        self._sending = False
        if not self._queue:
            self._idle.set()

    async def drained(self) -> None:
        """Waits until every queued message has been written."""
        await self._idle.wait()
