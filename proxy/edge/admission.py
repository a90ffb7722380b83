"""A bound on requests in flight across the whole gateway.

Beyond `limit`, a request waits at most `queue_timeout` for a slot, then gets 503
`overloaded` with `Retry-After`. The number waiting is bounded too (by `limit`), so memory
stays bounded however many clients connect. A stream holds its slot until it ends.
Health checks are not admitted through here: they must answer under load.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from attrs import define, field

from proxy.edge.request_keys import Handler
from proxy.errors import Overloaded


@define
class Admission:
    limit: int
    queue_timeout: float
    _slots: asyncio.Semaphore = field(init=False)
    _waiting: int = 0

    def __attrs_post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.limit)

    @property
    def in_flight(self) -> int:
        return self.limit - self._slots._value

    async def _acquire(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        if self._waiting >= self.limit:
            raise Overloaded(f"{self.limit} requests in flight and as many waiting")
        self._waiting += 1
        try:
            async with asyncio.timeout(self.queue_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise Overloaded(
                f"{self.limit} requests in flight; no slot freed within {self.queue_timeout:g} s"
            ) from None
        finally:
            self._waiting -= 1

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST":
            return await handler(request)
        await self._acquire()
        try:
            return await handler(request)
        finally:
            self._slots.release()
