"""A bound on requests in flight across the whole gateway.

Beyond `limit`, a request waits at most `queue_timeout` for a slot, then gets 503
`overloaded` with `Retry-After`. The number waiting is bounded too (by `limit`), so memory
stays bounded however many clients connect. A stream holds its slot until it ends.
Health checks are not admitted through here: they must answer under load.
"""

from __future__ import annotations

import asyncio

from attrs import define, field

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

    async def enter(self) -> None:
        """A slot for a POST (a step of the edge, chain.py); Overloaded when none frees in time."""
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

    def leave(self) -> None:
        self._slots.release()
