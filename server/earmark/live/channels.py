"""A multichannel live stream (``multichannel=true``): one LiveRunner per channel, each with its
own VAD state, session, speakers and tags, fed the same interleaved frames (each runner's
decoder keeps its channel). It offers the connection what one runner does."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from earmark.live.runner import LiveRunner


class ChannelGroup:
    def __init__(self, runners: Sequence[LiveRunner]) -> None:
        if not runners:
            raise ValueError("a channel group needs at least one runner")
        self.runners = list(runners)
        self.decoder = self.runners[0].decoder  # frame_bytes: one interleaved frame
        self.sha256 = self.runners[0].sha256  # of the bytes as received (every runner's)
        loop = asyncio.get_running_loop()
        self.failed: asyncio.Future[None] = loop.create_future()
        for runner in self.runners:
            runner.failed.add_done_callback(self._on_failed)

    def _on_failed(self, future: asyncio.Future[None]) -> None:
        if self.failed.done() or future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.failed.set_exception(exc)

    @property
    def lag_samples(self) -> int:
        return max(r.lag_samples for r in self.runners)

    @property
    def pending_finals(self) -> int:
        return max(r.pending_finals for r in self.runners)

    @property
    def now_sample(self) -> int:
        return max(r.now_sample for r in self.runners)

    @property
    def settled_sample(self) -> int:
        return min(r.settled_sample for r in self.runners)

    @property
    def quiet(self) -> bool:
        return all(r.quiet for r in self.runners)

    @property
    def partials_shed(self) -> bool:
        return any(r.partials_shed for r in self.runners)

    async def feed(self, data: bytes) -> tuple[int, float]:
        got = [await runner.feed(data) for runner in self.runners]
        return max(n for n, _ in got), max(peak for _, peak in got)

    async def wait_for_finals(self, most: int) -> None:
        for runner in self.runners:
            await runner.wait_for_finals(most)

    async def feed_silence(self, samples: int) -> None:
        for runner in self.runners:
            await runner.feed_silence(samples)

    def finalize(self) -> None:
        for runner in self.runners:
            runner.finalize()

    async def close(self) -> None:
        for runner in self.runners:
            await runner.close()

    async def finish(self, sender: asyncio.Future[None], timeout_s: float) -> int:
        """Every channel's last finals; the longest channel's duration in samples."""
        results: list[Any] = await asyncio.gather(
            *(r.finish(sender, timeout_s) for r in self.runners))
        return max(int(d) for d in results)

    def abandon(self) -> None:
        for runner in self.runners:
            runner.abandon()
