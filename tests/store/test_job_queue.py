"""The file-job queue: a caller waiting on ``POST /v1/listen`` goes ahead of queued jobs."""

from __future__ import annotations

import asyncio

from earmark.config import Settings
from earmark.filejobs.runner import JobRunner


async def test_an_urgent_job_runs_before_queued_ones_and_waiters_wake() -> None:
    runner = JobRunner(store=None, engine=None, settings=Settings(),  # type: ignore[arg-type]
                       notify=lambda: None)
    for job_id in ("a", "b"):
        runner.enqueue(job_id)
    runner.enqueue("urgent", urgent=True)
    runner.enqueue("c")
    order = [runner._queue.get_nowait()[2] for _ in range(4)]
    assert order == ["urgent", "a", "b", "c"]

    waiter = asyncio.create_task(runner.wait("urgent"))
    await asyncio.sleep(0)
    assert not waiter.done()
    runner._finished("urgent")
    await asyncio.wait_for(waiter, 1)
    assert runner._waiters == {}
