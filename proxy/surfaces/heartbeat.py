"""The heartbeat of every open stream, kept by one task for the whole app.

A stream that sends nothing for `PROXY_SSE_HEARTBEAT` seconds (a model thinking, loading,
or waiting for a tool) gets an SSE comment, `: ping`, so that a proxy between the gateway
and the client does not take the connection for a dead one and close it.

One task looks at every open stream twice per interval and pings those that sent nothing
since it last looked; a silent stream hears from the gateway once per interval, as from a
timer of its own, but a stream costs only its entry in a set (a task and its timer per
stream were a measurable share of a stream's set-up, docs/PERFORMANCE.md). A stream
whose client has not yet taken everything sent is not pinged: bytes are waiting for it
already, and a write then could wait on that one client, while this task serves all.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger("proxy")


class Beating(Protocol):
    """A stream as the heartbeat sees it."""

    def silent_since_asked(self) -> bool:
        """Whether it sent nothing since the last time it was asked."""

    def may_write_at_once(self) -> bool:
        """Whether its client has taken everything sent so far."""

    async def ping(self) -> None: ...


class Heartbeat:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._streams: set[Beating] = set()

    def add(self, stream: Beating) -> None:
        """From the stream's start (its headers sent) ..."""
        self._streams.add(stream)

    def discard(self, stream: Beating) -> None:
        """... until its end: nothing may be written after its last event."""
        self._streams.discard(stream)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval / 2)
            # A copy: a failed ping leaves the set. No write below waits (see `may_write_at_once`),
            # so no stream can end between this look and its ping.
            for stream in list(self._streams):
                if stream.silent_since_asked() and stream.may_write_at_once():
                    await self._ping(stream)

    async def _ping(self, stream: Beating) -> None:
        try:
            await stream.ping()
        except (ConnectionResetError, RuntimeError):  # the client went away, or the response ended
            self._streams.discard(stream)
        except Exception:  # the heartbeat goes on for the other streams
            log.exception("stream heartbeat failed")
            self._streams.discard(stream)

