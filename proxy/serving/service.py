"""One request from a surface to a backend and back: the steps every surface shares.

A surface handler reads and checks its body, builds a `ChatRequest`, `CompletionRequest`
or `EmbedRequest`, and calls the `Service`; it never looks up routes, reserves limits,
picks backends or records outcomes itself. The service does, in this order:

    model table (route, max_tokens) -> answer cache (a hit ends here) -> limiter
    reservation -> router (first backend that serves) -> reservation settled with the real
    usage -> outcome recorded -> answer remembered

Every upstream request it causes carries the caller's X-Request-ID and trace context
(backends/outbound.py). A cache hit (serving/answer_cache.py) is reserved as a request
that spends no tokens.

Streams are also registered with the shutdown drain from before their first token, and
their reservation is settled however they end (a normal end, a cut, a client leaving).
The service knows nothing of HTTP: who asks comes in as a `Caller`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from typing import Any, Generic, TypeVar

from attrs import frozen

from proxy.backends.base import Backend
from proxy.backends.outbound import forward
from proxy.cache import policy
from proxy.cache.answers import AnswerCache
from proxy.cache.entries import CachedChat, CachedEmbeddings, CachedStream
from proxy.errors import BadUpstreamResponse, ShuttingDown, UpstreamError
from proxy.llm import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    GenerationRequest,
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
from proxy.serving import native_serving
from proxy.serving.answer_cache import HIT_ESTIMATE, HIT_PROVIDER, NO_USAGE, for_chat, for_embeddings, recording, replay
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
    """Who a request is served for, what it asks of the serving layer beyond the request
    itself, and where what it came to is written down."""

    tenant: Tenant
    request_id: str
    outcome: Outcome
    # The client's X-Gateway-Cache: "use" or "skip" the answer cache, or "auto".
    cache_wish: policy.Asked = "auto"
    # The client's W3C trace context, passed on to the upstreams.
    traceparent: str | None = None
    tracestate: str | None = None

    def forward(self) -> None:
        """Every upstream request made for this caller carries its id and trace context."""
        forward(self.request_id, self.traceparent, self.tracestate)


Items = TypeVar("Items", StreamItem, NativeItem)


@frozen
class ServedStream(Generic[Items]):
    """A stream that has its first token: `items` are its tokens and then one `StreamEnd`
    (for a native stream: its upstream's lines, the last carrying the end)."""

    provider: str
    backend_name: str  # "cache" for an answer replayed from the answer cache
    items: AsyncGenerator[Items, None]
    cutoff: asyncio.Timeout

    def cut_by_shutdown(self) -> bool:
        """Whether a TimeoutError in this stream came from the shutdown drain's cutoff."""
        return self.cutoff.expired()


@frozen
class Service:
    model_table: Routes
    limiter: Limiter
    router: Router
    drain: Drain
    answers: AnswerCache

    @asynccontextmanager
    async def counted(self, caller: Caller) -> AsyncIterator[None]:
        """A call of no model (health): counted against the caller's requests per minute and
        concurrency, with no tokens."""
        async with self.limiter.reserve(caller.tenant, "", NO_TOKENS):
            yield

    async def chat(self, caller: Caller, chat: ChatRequest) -> tuple[str, ChatResult]:
        """(provider, answer); `chat.model` is the public name the key's limits and usage use."""
        caller.outcome.model = chat.model
        caller.outcome.features = chat.features()
        chat, route = self.model_table.table.resolve(chat)
        caller.forward()
        lookup = for_chat(self.answers, caller.tenant, caller.cache_wish, caller.outcome, chat, route, stream=False)
        if lookup is not None and (hit := await lookup.find(CachedChat.from_bytes)) is not None:
            await self._count_hit(caller, chat.model)
            return hit.provider, hit.result
        async with self.limiter.reserve(caller.tenant, chat.model, chat_estimate(chat)) as reservation:
            backend, result = await self.router.serve_chat(chat, route)
            # Without usage, thinking and tool-call arguments count as output with the text.
            reservation.record(result.usage, output=result.generated_text)
        caller.outcome.served(backend.provider, result.usage)
        if lookup is not None and result.text_only:  # the cache keeps text: tool calls and thinking are not kept
            await lookup.remember(CachedChat(backend.provider, result))
        return backend.provider, result

    async def complete(self, caller: Caller, completion: CompletionRequest) -> tuple[str, ChatResult]:
        """(provider, answer) of one text completion, served like a chat: same route, limits,
        fallback and outcome. Text completions are not kept in the answer cache."""
        caller.outcome.model = completion.model
        caller.outcome.features = completion.features()
        completion, route = self.model_table.table.resolve(completion)
        caller.forward()
        async with self.limiter.reserve(
                caller.tenant, completion.model, completion_estimate(completion)) as reservation:
            backend, result = await self.router.serve_completion(completion, route)
            reservation.record(result.usage, output=result.output)
        caller.outcome.served(backend.provider, result.usage)
        return backend.provider, result

    async def embed(self, caller: Caller, embed: EmbedRequest) -> tuple[str, EmbedResult]:
        """(provider, vectors)."""
        caller.outcome.model = embed.model
        route = self.model_table.table.route(embed.model, "embeddings")
        caller.forward()
        lookup = for_embeddings(self.answers, caller.tenant, caller.cache_wish, caller.outcome, embed, route)
        if lookup is not None and (hit := await lookup.find(CachedEmbeddings.from_bytes)) is not None:
            await self._count_hit(caller, embed.model)
            return hit.provider, hit.result
        async with self.limiter.reserve(caller.tenant, embed.model, embed_estimate(embed)) as reservation:
            backend, result = await self.router.serve_embed(embed, route)
            usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
            reservation.record(usage)
        caller.outcome.served(backend.provider, usage)
        if lookup is not None:
            await lookup.remember(CachedEmbeddings(backend.provider, result))
        return backend.provider, result

    async def _count_hit(self, caller: Caller, model: str) -> None:
        """A cache hit against the key's limits: one request (refused like any other when
        over its limit), no tokens."""
        async with self.limiter.reserve(caller.tenant, model, HIT_ESTIMATE) as reservation:
            reservation.record(NO_USAGE)
        caller.outcome.served(HIT_PROVIDER)

    @asynccontextmanager
    async def stream(self, caller: Caller, chat: GenerationRequest) -> AsyncIterator[ServedStream[StreamItem]]:
        """A chat's or a text completion's stream once some backend produced its first token
        (or, for a chat, the answer cache has it);
        the upstream is closed, the reservation settled and the drain told when the block
        ends, however it ends.

        Raises ShuttingDown when the drain cuts the stream before its first token; a
        TimeoutError inside the block is the drain's cut when `cut_by_shutdown()` says so.
        """
        caller.outcome.model = chat.model
        caller.outcome.features = chat.features()
        chat, route = self.model_table.table.resolve(chat)
        caller.forward()
        lookup = None
        if isinstance(chat, ChatRequest):  # text completions are not kept in the answer cache
            lookup = for_chat(self.answers, caller.tenant, caller.cache_wish, caller.outcome, chat, route, stream=True)
        hit = None if lookup is None else await lookup.find(CachedStream.from_bytes)
        opened = False
        try:
            async with (
                self.drain.stream() as cutoff,
                # Checked before any upstream is asked; settled with the real usage however the
                # stream ends (a cut, a client leaving). A hit spends no tokens.
                self.limiter.reserve(
                    caller.tenant, chat.model, HIT_ESTIMATE if hit else generation_estimate(chat)) as reservation,
            ):
                if hit is not None:
                    reservation.record(NO_USAGE)
                    caller.outcome.served(HIT_PROVIDER)
                    async with aclosing(replay(hit)) as replayed:
                        opened = True
                        yield ServedStream(hit.provider, HIT_PROVIDER, replayed, cutoff)
                    return
                first = await self.router.open_stream(chat, route)
                provider = first.backend.provider
                caller.outcome.served(provider)
                async with first.closing() as items:
                    recorded = items if lookup is None else recording(items, lookup, provider)
                    async with aclosing(recorded), aclosing(
                            _settled(recorded, reservation, caller.outcome, first.backend)) as settled:
                        opened = True
                        yield ServedStream(provider, first.backend.name, settled, cutoff)
        except TimeoutError:
            if opened or not cutoff.expired():
                raise
            raise ShuttingDown("the gateway is shutting down") from None


    # --- an upstream's own API (the Ollama surface): serving/native_serving.py ---------------

    async def native(
        self, caller: Caller, request: NativeRequest,
    ) -> tuple[str, NativeAnswer | ChatResult | EmbedResult | ModelQuery]:
        """(provider, answer) of a request in an upstream's own API: passed as it is to a
        backend that speaks it, translated for the others (no answer cache)."""
        return await native_serving.serve(self, caller, request)

    def native_stream(self, caller: Caller, request: NativeRequest) -> AbstractAsyncContextManager[
            ServedStream[NativeItem]]:
        return native_serving.stream(self, caller, request)

    async def native_reads(self, api: str, path: str) -> list[tuple[Backend, Any]]:
        return await native_serving.reads(self, api, path)

    def manage(
        self, caller: Caller, api: str, backend: str | None, method: str, path: str,
        data: bytes | AsyncIterator[bytes] | None, content_type: str | None,
    ) -> AbstractAsyncContextManager[Relayed]:
        return native_serving.manage(self, caller, api, backend, method, path, data, content_type)


async def _settled(
    items: AsyncIterator[Items], reservation: Reservation, outcome: Outcome, backend: Backend,
) -> AsyncGenerator[Items, None]:
    """The items, recording each into the reservation and the final usage into the outcome."""
    # Counted here and recorded once the stream ends, however it ends: before the
    # reservation is settled, which happens only after this generator is closed.
    produced = 0
    try:
        async for item in items:
            if isinstance(item, str):  # the usual item: a token
                produced += 1
                yield item
                continue
            end = stream_end(item)
            if end is not None:
                reservation.record(end.usage)
                if end.usage is not None:
                    outcome.served(backend.provider, end.usage)
                yield item
                return
            produced += 1  # thinking and tool-call pieces are output tokens too
            yield item
        raise BadUpstreamResponse("the stream ended without a final message", backend=backend.name)
    except UpstreamError as exc:
        metrics.upstream_failed(exc.backend, exc.code, passed_on=False)
        raise
    finally:
        reservation.produced(produced)

