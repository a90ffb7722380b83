"""What an upstream test server saw: every request with its JSON body, concurrency, the
connection it came on, and whether the gateway hung up on it (its handler was cancelled)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from attrs import define, field

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Asked by the gateway on its own before streams (is the model loaded?), not by clients;
# tests that care about it read the upstream's answers instead.
UNRECORDED = frozenset({"/api/ps"})


@define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    connection: int = 0  # which TCP connection it came on (an id, the same for a reused one)
    cancelled: bool = False
    finished: bool = False


@define
class Recorder:
    requests: list[Seen] = field(factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _changed: asyncio.Event = field(factory=asyncio.Event)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def bodies(self, path: str) -> list[Any]:
        return [r.json for r in self.requests if r.path == path]

    def connections(self) -> int:
        """How many TCP connections the recorded requests came on."""
        return len({r.connection for r in self.requests})

    def models(self) -> list[str]:
        return [r.json.get("model") for r in self.requests if isinstance(r.json, dict)]

    async def wait_until(self, done: Callable[[list[Seen]], bool], limit: float = 10.0) -> list[Seen]:
        """The requests, once `done(requests)` holds.

        Bounded so a broken gateway fails the test instead of hanging it; how long it
        took is not asserted anywhere.
        """
        async with asyncio.timeout(limit):
            while not done(self.requests):
                self._changed.clear()
                await self._changed.wait()
        return self.requests

    async def arrived(self, count: int) -> list[Seen]:
        return await self.wait_until(lambda seen: len(seen) >= count)

    async def settled(self) -> list[Seen]:
        """The requests, once there is one and every one has finished."""
        return await self.wait_until(lambda seen: bool(seen) and all(r.finished for r in seen))

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in UNRECORDED:
                return await handler(request)
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = raw
            seen = Seen(request.method, request.path, dict(request.headers), body, connection=id(request.protocol))
            self.requests.append(seen)
            self._changed.set()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                return await handler(request)
            except asyncio.CancelledError:
                seen.cancelled = True
                raise
            finally:
                seen.finished = True
                self.in_flight -= 1
                self._changed.set()

        return record
