"""One request from a surface to a backend and back: the steps every surface shares.

A surface handler reads and checks its body, builds a `ChatRequest` or `EmbedRequest`,
and calls the `Service`; it never looks up routes, reserves limits, picks backends or
records outcomes itself. The service does, in this order:

    model table (route, max_tokens) -> limiter reservation -> router (first backend that
    serves) -> reservation settled with the real usage -> outcome recorded

Streams are also registered with the shutdown drain from before their first token, and
their reservation is settled however they end (a normal end, a cut, a client leaving).
The service knows nothing of HTTP: who asks comes in as a `Caller`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any, Generic, TypeVar

import attrs
from attrs import frozen

from proxy.backends.base import Backend
from proxy.errors import BadUpstreamResponse, RouteNotFound, ShuttingDown, UpstreamError
from proxy.llm import (
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    ModelQuery,
    NativeAnswer,
    NativeItem,
    NativeRequest,
    Relayed,
    StreamItem,
    Usage,
    stream_end,
)
from proxy.observability import metrics
from proxy.serving.drain import Drain
from proxy.serving.model_table import Route, Routes
from proxy.serving.outcome import Outcome
from proxy.serving.router import OpenStream, Router
from proxy.tenants.estimate import TokenEstimate, chat_estimate, embed_estimate
from proxy.tenants.keyring import Tenant
from proxy.tenants.limiter import Limiter, Reservation

# What a call of no model reserves against the key's tokens per minute: nothing.
NO_TOKENS = TokenEstimate(prompt=0, completion=0)


@frozen
class Caller:
    """Who a request is served for, and where what it came to is written down."""

    tenant: Tenant
    request_id: str
    outcome: Outcome


Items = TypeVar("Items", StreamItem, NativeItem)


@frozen
class ServedStream(Generic[Items]):
    """A stream that has its first token: `items` are its tokens and then one `StreamEnd`
    (for a native stream: its upstream's lines, the last carrying the end)."""

    backend: Backend
    items: AsyncGenerator[Items, None]
    cutoff: asyncio.Timeout

    @property
    def provider(self) -> str:
        return self.backend.provider

    def cut_by_shutdown(self) -> bool:
        """Whether a TimeoutError in this stream came from the shutdown drain's cutoff."""
        return self.cutoff.expired()


@frozen
class Service:
    model_table: Routes
    limiter: Limiter
    router: Router
    drain: Drain

    @asynccontextmanager
    async def counted(self, caller: Caller) -> AsyncIterator[None]:
        """A call of no model (health): counted against the caller's requests per minute and
        concurrency, with no tokens."""
        async with self.limiter.reserve(caller.tenant, "", NO_TOKENS):
            yield

    async def chat(self, caller: Caller, chat: ChatRequest) -> tuple[Backend, ChatResult]:
        """One answer; `chat.model` is the public name the key's limits and usage use."""
        caller.outcome.model = chat.model
        chat, route = self.model_table.table.resolve(chat)
        async with self.limiter.reserve(caller.tenant, chat.model, chat_estimate(chat)) as reservation:
            backend, result = await self.router.serve_chat(chat, route)
            reservation.record(result.usage, output=result.output)
        caller.outcome.served(backend.provider, result.usage)
        return backend, result

    async def embed(self, caller: Caller, embed: EmbedRequest) -> tuple[Backend, EmbedResult]:
        caller.outcome.model = embed.model
        route = self.model_table.table.route(embed.model, "embeddings")
        async with self.limiter.reserve(caller.tenant, embed.model, embed_estimate(embed)) as reservation:
            backend, result = await self.router.serve_embed(embed, route)
            usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
            reservation.record(usage)
        caller.outcome.served(backend.provider, usage)
        return backend, result

    def stream(self, caller: Caller, chat: ChatRequest) -> AbstractStream[StreamItem]:
        """A stream once some backend produced its first token; the upstream is closed, the
        reservation settled and the drain told when the block ends, however it ends.

        Raises ShuttingDown when the drain cuts the stream before its first token; a
        TimeoutError inside the block is the drain's cut when `cut_by_shutdown()` says so.
        """
        caller.outcome.model = chat.model
        chat, route = self.model_table.table.resolve(chat)
        return self._streaming(caller, chat.model, chat_estimate(chat), lambda: self.router.open_stream(chat, route))

    async def native(
        self, caller: Caller, request: NativeRequest,
    ) -> tuple[Backend, NativeAnswer | ChatResult | EmbedResult | ModelQuery]:
        """A request in an upstream's own API (see NativeRequest), served like `chat`: passed
        as it is to a backend that speaks it, translated for the others."""
        caller.outcome.model = request.public_model
        request, route, estimate = self._resolve_native(request)
        async with self.limiter.reserve(caller.tenant, request.public_model, estimate) as reservation:
            backend, result = await self.router.serve_native(request, route)
            usage = _usage_of(result)
            reservation.record(usage, output=result.output if isinstance(result, ChatResult) else "")
        caller.outcome.served(backend.provider, usage)
        return backend, result

    def native_stream(self, caller: Caller, request: NativeRequest) -> AbstractStream[NativeItem]:
        """As `stream`, for a stream in an upstream's own API: its items are the upstream's
        lines from a backend that speaks it, normalized tokens from one that does not."""
        caller.outcome.model = request.public_model
        request, route, estimate = self._resolve_native(request)
        return self._streaming(caller, request.public_model, estimate,
                               lambda: self.router.open_native_stream(request, route))

    async def native_reads(self, api: str, path: str) -> list[tuple[Backend, Any]]:
        """GET `path` of every backend that speaks `api` (Ollama's /api/tags, /api/ps,
        /api/version): each one's JSON, or its UpstreamError; no model, so no reservation."""
        backends = [member.backend for member in self.router.members if member.backend.speaks(api)]

        async def read(backend: Backend) -> Any:
            try:
                return await backend.native_get(path)
            except UpstreamError as exc:
                return exc

        return list(zip(backends, await asyncio.gather(*(read(b) for b in backends)), strict=True))

    def native_backend(self, api: str, name: str | None) -> Backend:
        """The backend that speaks `api` named `name`, or the first one (model management)."""
        for member in self.router.members:
            if member.backend.speaks(api) and name in (None, member.backend.name):
                return member.backend
        raise RouteNotFound(f"no {api} backend named {name!r}" if name else f"no {api} backend is configured")

    @asynccontextmanager
    async def manage(
        self, caller: Caller, api: str, backend: str | None, method: str, path: str,
        data: bytes | AsyncIterator[bytes] | None, content_type: str | None,
    ) -> AsyncIterator[Relayed]:
        """Model management, relayed as it is to one backend that speaks `api` (by name, or
        the first); the caller is trusted to be an admin: the surface checks."""
        target = self.native_backend(api, backend)
        caller.outcome.served(target.provider)
        async with target.relay(method, path, data, content_type) as relayed:
            yield relayed

    def _resolve_native(self, request: NativeRequest) -> tuple[NativeRequest, Route | None, TokenEstimate]:
        """The request as its route wants it (max_tokens default and ceiling), the route and
        what the limiter reserves for it."""
        table = self.model_table.table
        translated = request.translated
        if isinstance(translated, EmbedRequest):
            return request, table.route(request.public_model, "embeddings"), embed_estimate(translated)
        if isinstance(translated, ModelQuery):  # counted as a request, no tokens
            return request, table.route(request.public_model, None), TokenEstimate(prompt=0)
        chat, route = table.resolve(translated)
        return attrs.evolve(request, translated=chat), route, chat_estimate(chat)

    @asynccontextmanager
    async def _streaming(
        self, caller: Caller, model: str, estimate: TokenEstimate,
        open_stream: Callable[[], Awaitable[OpenStream[Items]]],
    ) -> AsyncIterator[ServedStream[Items]]:
        opened = False
        try:
            async with (
                self.drain.stream() as cutoff,
                # Checked before any upstream is asked; settled with the real usage however the
                # stream ends (a cut, a client leaving).
                self.limiter.reserve(caller.tenant, model, estimate) as reservation,
            ):
                first = await open_stream()
                provider = first.backend.provider
                caller.outcome.served(provider)
                async with first.closing() as items, aclosing(
                        _settled(items, reservation, caller.outcome, first.backend)) as settled:
                    opened = True
                    yield ServedStream(backend=first.backend, items=settled, cutoff=cutoff)
        except TimeoutError:
            if opened or not cutoff.expired():
                raise
            raise ShuttingDown("the gateway is shutting down") from None


AbstractStream = contextlib.AbstractAsyncContextManager[ServedStream[Items]]


def _usage_of(result: NativeAnswer | ChatResult | EmbedResult | ModelQuery) -> Usage | None:
    if isinstance(result, EmbedResult):
        return Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
    return None if isinstance(result, ModelQuery) else result.usage


async def _settled(
    items: AsyncGenerator[Items, None], reservation: Reservation, outcome: Outcome, backend: Backend,
) -> AsyncGenerator[Items, None]:
    """The items, recording each into the reservation and the final usage into the outcome."""
    try:
        async for item in items:
            end = stream_end(item)
            if end is not None:
                reservation.record(end.usage)
                if end.usage is not None:
                    outcome.served(backend.provider, end.usage)
                yield item
                return
            reservation.produced()
            yield item
        raise BadUpstreamResponse("the stream ended without a final message", backend=backend.name)
    except UpstreamError as exc:
        metrics.upstream_failed(exc.backend, exc.code, passed_on=False)
        raise

