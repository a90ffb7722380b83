"""Work that runs beside the server for as long as the app lives: periodic chores (a GC sweep,
gauges, file watches) and the fleet's loops.

aiohttp's cleanup contexts start such tasks before `yield` and must cancel them after it,
waiting for each to end, or shutdown leaves tasks running against closed sessions and
"Task was destroyed but it is pending" in the log. `running` does that in one place.
Imports nothing from proxy, so any layer may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

log = logging.getLogger("proxy")


async def every(interval: float, action: Callable[[], object], *, first_at_once: bool = False) -> None:
    """`action()` every `interval` seconds until cancelled; the first call after one
    interval, or at once with `first_at_once`. A call that raises is logged and the chore
    goes on: one bad moment (a file half written, a full disk) must not end it for the
    process's life, unnoticed."""
    if first_at_once:
        _attempt(action)
    while True:
        await asyncio.sleep(interval)
        _attempt(action)


def _attempt(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:
        log.exception("a periodic task failed (%s); it runs again at its next interval",
                      getattr(action, "__qualname__", action))


@contextlib.asynccontextmanager
async def running(*jobs: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Each job as a task for the length of the block; at its end every task is cancelled
    and waited for."""
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
