"""One request from a surface to a backend and back: the steps every surface shares.

A surface handler reads and checks its body, builds a `ChatRequest`, `CompletionRequest`
or `EmbedRequest`, and calls the `Service`; it never looks up routes, reserves limits, picks backends or
records outcomes itself. The service does, in this order:

    model table (route, max_tokens) -> limiter reservation -> router (first backend that
    serves) -> reservation settled with the real usage -> outcome recorded

Streams are also registered with the shutdown drain from before their first token, and
their reservation is settled however they end (a normal end, a cut, a client leaving).
The service knows nothing of HTTP: who asks comes in as a `Caller`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager

from attrs import frozen

from proxy.backends.base import Backend
from proxy.errors import BadUpstreamResponse, ShuttingDown, UpstreamError
from proxy.llm import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    GenerationRequest,
    StreamEnd,
    StreamItem,
    Usage,
)
from proxy.observability import metrics
from proxy.serving.drain import Drain
from proxy.serving.model_table import Routes
from proxy.serving.outcome import Outcome
from proxy.serving.router import Router
from proxy.tenants.estimate import (
    TokenEstimate,
    chat_estimate,
    completion_estimate,
    embed_estimate,
    generation_estimate,
)
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


@frozen
class ServedStream:
    """A stream that has its first token: `items` are its tokens and then one `StreamEnd`."""

    backend: Backend
    items: AsyncGenerator[StreamItem, None]
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

    async def complete(self, caller: Caller, completion: CompletionRequest) -> tuple[Backend, ChatResult]:
        """One text completion, served like a chat: same route, limits, fallback and outcome."""
        caller.outcome.model = completion.model
        completion, route = self.model_table.table.resolve(completion)
        async with self.limiter.reserve(
                caller.tenant, completion.model, completion_estimate(completion)) as reservation:
            backend, result = await self.router.serve_completion(completion, route)
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

    @asynccontextmanager
    async def stream(self, caller: Caller, chat: GenerationRequest) -> AsyncIterator[ServedStream]:
        """A chat's or a text completion's stream once some backend produced its first token;
        the upstream is closed, the reservation settled and the drain told when the block
        ends, however it ends.

        Raises ShuttingDown when the drain cuts the stream before its first token; a
        TimeoutError inside the block is the drain's cut when `cut_by_shutdown()` says so.
        """
        caller.outcome.model = chat.model
        chat, route = self.model_table.table.resolve(chat)
        opened = False
        try:
            async with (
                self.drain.stream() as cutoff,
                # Checked before any upstream is asked; settled with the real usage however the
                # stream ends (a cut, a client leaving).
                self.limiter.reserve(caller.tenant, chat.model, generation_estimate(chat)) as reservation,
            ):
                first = await self.router.open_stream(chat, route)
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


async def _settled(
    items: AsyncGenerator[StreamItem, None], reservation: Reservation, outcome: Outcome, backend: Backend,
) -> AsyncGenerator[StreamItem, None]:
    """The items, recording each into the reservation and the final usage into the outcome."""
    try:
        async for item in items:
            if isinstance(item, StreamEnd):
                reservation.record(item.usage)
                if item.usage is not None:
                    outcome.served(backend.provider, item.usage)
                yield item
                return
            reservation.produced()
            yield item
        raise BadUpstreamResponse("the stream ended without a final message", backend=backend.name)
    except UpstreamError as exc:
        metrics.upstream_failed(exc.backend, exc.code, passed_on=False)
        raise

