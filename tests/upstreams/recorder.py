"""What an upstream test server saw: every request with its JSON body, and concurrency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from attrs import define, field

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@define
class Recorder:
    requests: list[Seen] = field(factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = raw
            self.requests.append(Seen(request.method, request.path, dict(request.headers), body))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                return await handler(request)
            finally:
                self.in_flight -= 1

        return record
