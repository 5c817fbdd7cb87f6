"""The session registry: capacity, URL pulls and per-key counts taken once, and the drain."""

from __future__ import annotations

import asyncio

from earmark.errors import Overloaded
from earmark.live.registry import SessionRegistry


class Fake:
    def __init__(self, owner: str | None = None, streams: int = 1, pulls_url: bool = False,
                 finishes: bool = True) -> None:
        self.owner, self.streams, self.pulls_url = owner, streams, pulls_url
        self.finished = asyncio.Event()
        self.finishes = finishes
        self.drained = False
        self.lag_s, self.partials_shed = 0.0, False

    def drain(self) -> None:
        self.drained = True
        if self.finishes:
            asyncio.get_running_loop().call_later(0.05, self.finished.set)

    def revoke(self, err) -> None:  # noqa: ANN001
        pass


async def test_counts_streams_pulls_and_keys_once() -> None:
    refused = []
    reg = SessionRegistry(lambda: 4, max_url_pulls=1, on_refused=lambda: refused.append(1))
    a, b, c = Fake("k1", streams=2), Fake("k1", pulls_url=True), Fake(None)
    for s in (a, b, c):
        reg.add(s)
    assert (len(reg), reg.streams, reg.url_pulls) == (3, 4, 1)
    assert reg.per_owner() == {"k1": 2} and reg.of_owner("k1") == 2
    assert isinstance(reg.over_capacity(), Overloaded) and refused == [1]
    assert isinstance(reg.over_pull_limit(), Overloaded)
    reg.discard(a)
    assert reg.over_capacity(2) is None and reg.streams == 2


async def test_drain_asks_every_session_and_reports_the_ones_left() -> None:
    reg = SessionRegistry(lambda: 8, max_url_pulls=8)
    quick, stuck = Fake(), Fake(finishes=False)
    reg.add(quick)
    reg.add(stuck)
    assert await reg.drain(0.5) == 1
    assert reg.draining and quick.drained and stuck.drained and quick.finished.is_set()
