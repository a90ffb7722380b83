"""Fallback: each request goes to the backends in order until one serves it.

A backend that cannot serve (unreachable, timed out, 5xx, 429, no such model) hands the
request to the next one; a backend that finds the request itself invalid (a 400) ends
it, since the next would refuse it too. For a stream, "serving" means producing its
first token: until then nothing has reached the client and moving on is invisible.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import TypeVar

from attrs import frozen

from proxy.backends.base import Backend
from proxy.errors import AllBackendsFailed, UpstreamError
from proxy.llm import ChatRequest, ChatResult, EmbedRequest, EmbedResult, StreamItem

T = TypeVar("T")


@frozen
class OpenStream:
    """A stream that has produced its first item: from here on it is the answer."""

    backend: Backend
    first: StreamItem
    rest: AsyncGenerator[StreamItem, None]

    async def items(self) -> AsyncGenerator[StreamItem, None]:
        """Every item, the first included; closing this closes the upstream stream."""
        async with aclosing(self.rest):
            yield self.first
            async for item in self.rest:
                yield item


@frozen
class Router:
    backends: Sequence[Backend]

    async def _first_that_serves(self, call: Callable[[Backend], Awaitable[T]]) -> tuple[Backend, T]:
        failures: list[UpstreamError] = []
        for backend in self.backends:
            try:
                return backend, await call(backend)
            except UpstreamError as exc:
                if not exc.fallthrough:
                    raise
                failures.append(exc)
        raise AllBackendsFailed(failures)

    async def chat(self, request: ChatRequest) -> tuple[Backend, ChatResult]:
        return await self._first_that_serves(lambda backend: backend.chat(request))

    async def embed(self, request: EmbedRequest) -> tuple[Backend, EmbedResult]:
        return await self._first_that_serves(lambda backend: backend.embed(request))

    async def open_stream(self, request: ChatRequest) -> OpenStream:
        """The first backend whose stream yields something; the others never show."""

        async def first_item(backend: Backend) -> OpenStream:
            stream = backend.stream(request)
            try:
                first = await anext(stream)
            except BaseException:
                await stream.aclose()
                raise
            return OpenStream(backend=backend, first=first, rest=stream)

        _, opened = await self._first_that_serves(first_item)
        return opened
