"""Graceful shutdown of streams: let them finish within a grace period, then end them honestly.

On shutdown aiohttp first stops accepting connections, then runs `on_shutdown`, where
`drain` waits up to `grace` seconds for the streams in flight to end by themselves. Streams
still running then are cut: each ends with a `done: true` event carrying a
`shutting_down` error, never with a silently closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from attrs import define, field

log = logging.getLogger("proxy")


@define
class Drain:
    grace: float
    draining: bool = False
    _cutoffs: set[asyncio.Timeout] = field(factory=set)
    _idle: asyncio.Event = field(factory=asyncio.Event)

    @property
    def streams(self) -> int:
        return len(self._cutoffs)

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[asyncio.Timeout]:
        """Scope of one stream; its timer fires (TimeoutError) if shutdown cuts it."""
        async with asyncio.timeout(None) as cutoff:
            self._cutoffs.add(cutoff)
            self._idle.clear()
            try:
                yield cutoff
            finally:
                self._cutoffs.discard(cutoff)
                if not self._cutoffs:
                    self._idle.set()

    async def drain(self) -> None:
        self.draining = True
        if not self._cutoffs:
            return
        log.info("shutdown: waiting up to %g s for %d streams", self.grace, len(self._cutoffs))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.grace):
                await self._idle.wait()
        if not self._cutoffs:
            return
        log.warning("shutdown: cutting %d streams after the grace period", len(self._cutoffs))
        now = asyncio.get_running_loop().time()
        for cutoff in list(self._cutoffs):
            cutoff.reschedule(now)
        # Each cut stream sends its final event and returns; give them a moment to do so.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._idle.wait()
