"""A file job whose state cannot be written (a full disk) runs again once there is room; it
was left ``scheduled`` forever (issue 27, item 6)."""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy.exc import OperationalError

from earmark.config import Settings
from earmark.filejobs import runner as runner_module
from earmark.filejobs.runner import JobRunner


class FullThenRoom:
    """The store's ``start`` fails as SQLite does on a full disk, twice, then finds the job
    gone (the test needs no more of a job than that)."""

    def __init__(self) -> None:
        self.starts = 0

    def start(self, job_id: str):  # noqa: ANN201
        self.starts += 1
        if self.starts <= 2:
            raise OperationalError("UPDATE jobs", {},
                                   sqlite3.OperationalError("database or disk is full"))
        return None


async def test_a_job_that_could_not_be_started_is_queued_again(monkeypatch):
    monkeypatch.setattr(runner_module, "STORAGE_RETRY_S", 0.05)
    store = FullThenRoom()
    runner = JobRunner(store, engine=None, settings=Settings(), notify=lambda: None)  # type: ignore[arg-type]
    runner._vads = [None]  # type: ignore[list-item]
    tasks = runner.start()
    runner.enqueue("job-1")
    for _ in range(100):
        await asyncio.sleep(0.02)
        if store.starts >= 3:
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert store.starts == 3  # twice refused by the disk, then run (and found gone)
