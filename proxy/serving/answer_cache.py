"""The answer cache as one request sees it: whether it applies, its key, a hit or a miss.

The service asks `for_embeddings` / `for_chat` once the request is routed; None means the
cache does not apply (off for this route and key, not cacheable, or the client said
`X-Gateway-Cache: skip`, which the surface passed on as the caller's wish). A `Lookup`
finds the entry, or remembers the answer an upstream gave, and writes "hit" or "miss"
into the outcome (the edge sends it as the `X-Gateway-Cache` response header).

A hit is still a request against its key's limits (requests per minute, concurrency) but
spends no tokens: the service reserves it with `HIT_ESTIMATE` and records `NO_USAGE`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

import attrs
from attrs import frozen

from proxy.cache import policy
from proxy.cache.answers import AnswerCache, Entry
from proxy.cache.entries import CachedStream
from proxy.cache.key import chat_key, embed_key
from proxy.llm import ChatRequest, EmbedRequest, StreamEnd, StreamItem, Usage
from proxy.serving.model_table import Route
from proxy.serving.outcome import Outcome
from proxy.tenants.estimate import TokenEstimate
from proxy.tenants.keyring import Tenant

HIT_ESTIMATE = TokenEstimate(prompt=0, completion=0)
NO_USAGE = Usage(prompt_tokens=0, completion_tokens=0)
HIT_PROVIDER = "cache"  # what metrics and the access log say served a hit

E = TypeVar("E")


@frozen
class Lookup:
    """One request's entry in the cache."""

    cache: AnswerCache
    kind: str
    key: str
    outcome: Outcome

    async def find(self, decode: Callable[[bytes], E | None]) -> E | None:
        entry = await self.cache.lookup(self.kind, self.key, decode)
        self.outcome.cache = "miss" if entry is None else "hit"
        return entry

    async def remember(self, entry: Entry) -> None:
        await self.cache.remember(self.kind, self.key, entry)


def _scope(route: Route | None, tenant: Tenant) -> str | None:
    return policy.scope(route.cache if route is not None else None, tenant.name, tenant.cache)


def _targets(route: Route | None) -> tuple[tuple[str, str], ...] | None:
    return None if route is None else tuple((t.backend, t.model) for t in route.backends)


def for_embeddings(
    cache: AnswerCache, tenant: Tenant, wish: policy.Asked, outcome: Outcome, embed: EmbedRequest,
    route: Route | None,
) -> Lookup | None:
    """Embeddings are always cacheable: the same text gives the same vector."""
    scope = _scope(route, tenant)
    if scope is None or wish == "skip":
        return None
    return Lookup(cache, "embeddings", embed_key(embed, _targets(route), scope), outcome)


def for_chat(
    cache: AnswerCache, tenant: Tenant, wish: policy.Asked, outcome: Outcome, chat: ChatRequest,
    route: Route | None, *, stream: bool,
) -> Lookup | None:
    scope = _scope(route, tenant)
    if scope is None or not policy.chat_cacheable(chat, wish):
        return None
    kind = "chat-stream" if stream else "chat"
    return Lookup(cache, kind, chat_key(chat, _targets(route), scope, stream=stream), outcome)


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
