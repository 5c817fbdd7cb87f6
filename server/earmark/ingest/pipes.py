"""Copying bytes between two stream connections (the egress proxy, the RTSP relay)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until ``reader`` ends or either side fails, then closes ``writer``."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if not writer.is_closing():
            writer.close()


async def until_either_ends(*copies: Coroutine[Any, Any, None]) -> None:
    """Runs both directions of a relayed connection; when one ends, the other is cancelled:
    a stalled side must not keep its socket open after the other gave up."""
    tasks = {asyncio.ensure_future(c) for c in copies}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
