"""One single-shot request through its key's limits to the first backend that serves it:
the steps the native and the OpenAI-compatible handlers share, whatever shape their
clients read. (Streams take the same steps in sse_relay.py.)

With the answer cache on for the request (proxy/cache/), a hit is answered before any
upstream is asked: it counts as a request against the key's limits, never as tokens.
"""

from __future__ import annotations

from aiohttp import web

from proxy.cache import serving as cache
from proxy.cache.entries import CachedChat, CachedEmbeddings
from proxy.limits.estimate import chat_estimate, embed_estimate
from proxy.llm import ChatRequest, ChatResult, EmbedRequest, EmbedResult, Usage
from proxy.middlewares import OUTCOME, tenant_of
from proxy.routes import Route
from proxy.state import LIMITER, ROUTER, ROUTES
from proxy.tenants import Tenant

_NOTHING = Usage(prompt_tokens=0, completion_tokens=0)


async def chat_once(request: web.Request, chat: ChatRequest, route: Route | None) -> tuple[str, ChatResult]:
    """(provider, answer) for `chat` as routed (`chat.model` is the public name limits use)."""
    tenant = tenant_of(request)
    lookup = cache.for_chat(request, chat, route, tenant, stream=False)
    if lookup is not None and (hit := await lookup.find(CachedChat.from_bytes)) is not None:
        await count_hit(request, tenant, chat.model)
        return hit.provider, hit.result
    async with request.app[LIMITER].reserve(tenant, chat.model, chat_estimate(chat)) as reservation:
        backend, result = await request.app[ROUTER].chat(chat, route)
        reservation.record(result.usage, output=result.output)
    request[OUTCOME].served(backend.provider, result.usage)
    if lookup is not None:
        await lookup.remember(CachedChat(backend.provider, result))
    return backend.provider, result


async def embed_once(request: web.Request, embed: EmbedRequest) -> tuple[str, EmbedResult]:
    request[OUTCOME].model = embed.model
    route = request.app[ROUTES].table.route(embed.model, "embeddings")
    tenant = tenant_of(request)
    lookup = cache.for_embeddings(request, embed, route, tenant)
    if lookup is not None and (hit := await lookup.find(CachedEmbeddings.from_bytes)) is not None:
        await count_hit(request, tenant, embed.model)
        return hit.provider, hit.result
    async with request.app[LIMITER].reserve(tenant, embed.model, embed_estimate(embed)) as reservation:
        backend, result = await request.app[ROUTER].embed(embed, route)
        usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
        reservation.record(usage)
    request[OUTCOME].served(backend.provider, usage)
    if lookup is not None:
        await lookup.remember(CachedEmbeddings(backend.provider, result))
    return backend.provider, result


async def count_hit(request: web.Request, tenant: Tenant, model: str) -> None:
    """A cache hit against the key's limits: one request (refused like any other when over
    its limit), no tokens."""
    async with request.app[LIMITER].reserve(tenant, model, cache.HIT_ESTIMATE) as reservation:
        reservation.record(_NOTHING)
    request[OUTCOME].served(cache.HIT_PROVIDER)
