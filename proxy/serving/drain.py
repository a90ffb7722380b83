"""Graceful shutdown of streams: let them finish within a grace period, then end them honestly.

On shutdown aiohttp first stops accepting connections, then runs `on_shutdown`, where
`drain` gives the streams in flight (and any that start on connections still open) until
`grace` seconds from then to end by themselves. Streams still running then are cut: each
ends with a `done: true` event carrying a `shutting_down` error, never with a silently
closed connection. A stream cut before its first token gets a plain 503 instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from attrs import define, field

log = logging.getLogger("proxy")


@define
class Drain:
    grace: float
    draining: bool = False
    _deadline: float | None = None
    _cutoffs: set[asyncio.Timeout] = field(factory=set)
    _idle: asyncio.Event = field(factory=asyncio.Event)

    def stream(self) -> StreamScope:
        """Scope of one stream request (`async with drain.stream() as cutoff`); its timer
        fires (TimeoutError) if shutdown cuts it.

        A stream that starts while the gateway drains gets what is left of the grace period.
        """
        return StreamScope(self)

    async def drain(self) -> None:
        """Give every stream, running or yet to start, until the end of the grace period."""
        self.draining = True
        self._deadline = asyncio.get_running_loop().time() + self.grace
        for cutoff in self._cutoffs:
            cutoff.reschedule(self._deadline)
        if not self._cutoffs:
            return
        log.info("shutdown: waiting up to %g s for %d streams", self.grace, len(self._cutoffs))
        # At the deadline each stream still running is cut by its own timer and sends its
        # final event; a few seconds more let those last events go out.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.grace + 5):
                await self._idle.wait()


class StreamScope:
    """One stream's registration with the drain. A plain class rather than
    @asynccontextmanager: it runs around every stream, and a generator-based one costs
    several times more calls on the way to the first token."""

    __slots__ = ("_cutoff", "_drain")

    def __init__(self, drain: Drain) -> None:
        self._drain = drain
        self._cutoff = asyncio.timeout(drain._deadline)

    async def __aenter__(self) -> asyncio.Timeout:
        cutoff = await self._cutoff.__aenter__()
        drain = self._drain
        drain._cutoffs.add(cutoff)
        if drain.draining:  # the drain may be waiting for the streams to end: this one counts too
            drain._idle.clear()
        return cutoff

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        drain = self._drain
        drain._cutoffs.discard(self._cutoff)
        if drain.draining and not drain._cutoffs:
            drain._idle.set()
        await self._cutoff.__aexit__(kind, exc, tb)  # raises TimeoutError when the drain's cut fired
