"""The answer cache as one request sees it: whether it applies, its key, and a hit or a miss.

The serving layer asks `for_embeddings` / `for_chat` once the request is routed; None
means the cache does not apply (off for this route and key, not cacheable, or the client
said `X-Gateway-Cache: skip`). A `Lookup` then finds the entry, or remembers the answer
the upstream gave. The outcome ("hit" or "miss") goes out as the `X-Gateway-Cache`
response header.

A hit is still a request against its key's limits (requests per minute, concurrency) but
spends no tokens: the serving layer reserves it with `HIT_ESTIMATE` and records no usage.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

import attrs
from aiohttp import web
from attrs import frozen

from proxy.cache import policy
from proxy.cache.answers import AnswerCache, Entry
from proxy.cache.entries import CachedStream
from proxy.cache.key import chat_key, embed_key
from proxy.limits.estimate import TokenEstimate
from proxy.llm import ChatRequest, EmbedRequest, StreamEnd, StreamItem
from proxy.routes import Route
from proxy.tenants import Tenant

CACHE = web.AppKey("CACHE", AnswerCache)
RESULT = web.RequestKey("cache_result", str)
HIT_ESTIMATE = TokenEstimate(prompt=0, completion=0)
HIT_PROVIDER = "cache"  # what metrics and the access log say served a hit

E = TypeVar("E")


@frozen
class Lookup:
    """One request's entry in the cache."""

    cache: AnswerCache
    kind: str
    key: str
    request: web.Request

    async def find(self, decode: Callable[[bytes], E | None]) -> E | None:
        entry = await self.cache.lookup(self.kind, self.key, decode)
        self.request[RESULT] = "miss" if entry is None else "hit"
        return entry

    async def remember(self, entry: Entry) -> None:
        await self.cache.remember(self.kind, self.key, entry)


def for_embeddings(request: web.Request, embed: EmbedRequest, route: Route | None, tenant: Tenant) -> Lookup | None:
    """Embeddings are always cacheable (the same text gives the same vector)."""
    wanted = policy.asked(request.headers.get(policy.REQUEST_HEADER))
    scope = policy.scope(route, tenant)
    if scope is None or wanted == "skip":
        return None
    return Lookup(request.app[CACHE], "embeddings", embed_key(embed, route, scope), request)


def for_chat(
    request: web.Request, chat: ChatRequest, route: Route | None, tenant: Tenant, *, stream: bool,
) -> Lookup | None:
    wanted = policy.asked(request.headers.get(policy.REQUEST_HEADER))
    scope = policy.scope(route, tenant)
    if scope is None or not policy.chat_cacheable(chat, wanted):
        return None
    kind = "chat-stream" if stream else "chat"
    return Lookup(request.app[CACHE], kind, chat_key(chat, route, scope, stream=stream), request)


async def replay(entry: CachedStream) -> AsyncGenerator[StreamItem, None]:
    """A cached stream as it first came: the same tokens, then its end, marked as cached."""
    for token in entry.tokens:
        yield token
    yield attrs.evolve(entry.end, cached=True)


async def recording(
    items: AsyncIterator[StreamItem], lookup: Lookup, provider: str,
) -> AsyncGenerator[StreamItem, None]:
    """`items` passed through; a stream that ends normally is remembered, token by token.
    One cut short is not: its end never comes."""
    tokens: list[str] = []
    async for item in items:
        if isinstance(item, StreamEnd):
            await lookup.remember(CachedStream(provider, tuple(tokens), item))
        else:
            tokens.append(item)
        yield item


async def add_cache_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: `X-Gateway-Cache: hit|miss` when the cache applied."""
    result = request.get(RESULT)
    if result is not None:
        response.headers[policy.RESPONSE_HEADER] = result
