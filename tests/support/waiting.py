"""Waiting for a condition that the gateway reaches on its own time (a reload, a settlement,
a heartbeat): checked until it holds, bounded so that a broken gateway fails the test
instead of hanging it. How long it took is asserted nowhere."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], limit: float = 10.0, every: float = 0.02) -> T:
    """The first truthy result of `check()`."""
    async with asyncio.timeout(limit):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(every)
