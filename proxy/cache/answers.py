"""The answer cache as the serving code uses it: look up, remember, and count both.

Built once per app: in memory (PROXY_CACHE_MAX_BYTES), or in Redis when PROXY_REDIS_URL
is set, so every replica shares the entries. Entries live PROXY_CACHE_TTL seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from attrs import define

from proxy.cache.stores import MemoryStore, RedisStore, Store
from proxy.fleet.link import RedisLink
from proxy.observability import cache_metrics as metrics
from proxy.settings.config import Settings


class Entry(Protocol):
    def to_bytes(self) -> bytes: ...


E = TypeVar("E")


@define
class AnswerCache:
    store: Store
    ttl: float

    @classmethod
    def from_settings(cls, settings: Settings, link: RedisLink | None) -> AnswerCache:
        store: Store = MemoryStore(settings.cache_max_bytes)
        if link is not None:
            store = RedisStore(link, max_value_bytes=settings.cache_max_bytes)
        return cls(store=store, ttl=settings.cache_ttl)

    async def lookup(self, kind: str, key: str, decode: Callable[[bytes], E | None]) -> E | None:
        """The entry under `key`, counted as a hit or a miss; one that does not decode is a miss."""
        raw = await self.store.get(key)
        entry = decode(raw) if raw is not None else None
        metrics.LOOKUPS.labels(kind, "miss" if entry is None else "hit").inc()
        if raw is not None and entry is not None:
            metrics.SERVED_BYTES.labels(kind).inc(len(raw))
        return entry

    async def remember(self, kind: str, key: str, entry: Entry) -> None:
        raw = entry.to_bytes()
        await self.store.put(key, raw, self.ttl)
        metrics.STORED_BYTES.labels(kind).inc(len(raw))
        metrics.HELD_BYTES.set(self.store.size_bytes)
