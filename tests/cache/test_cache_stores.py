"""The cache's stores on their own: the memory bound, and Redis going away and coming back."""

from __future__ import annotations

import os

from proxy.cache.stores import ENTRY_OVERHEAD, MemoryStore, RedisStore
from proxy.fleet.link import RedisLink
from proxy.settings.config import Settings
from tests.support.redis_server import RedisServer


async def test_the_memory_bound_holds_under_ten_thousand_distinct_entries() -> None:
    store = MemoryStore(max_bytes=1 << 20)
    value = os.urandom(1000)
    largest = 0
    for i in range(10_000):
        await store.put(f"key-{i:05d}", value, ttl=60)
        largest = max(largest, store.size_bytes)
        if i % 10 == 0:
            await store.get("key-00000")  # used often: never the least recently used
    assert largest <= 1 << 20
    per_entry = len("key-00000") + len(value) + ENTRY_OVERHEAD
    assert len(store) == (1 << 20) // per_entry
    assert await store.get("key-00000") == value
    assert await store.get("key-09999") == value
    assert await store.get("key-00001") is None  # the oldest untouched ones left first


async def test_an_entry_larger_than_the_whole_cache_is_not_stored() -> None:
    store = MemoryStore(max_bytes=4096)
    await store.put("small", b"x", ttl=60)
    await store.put("huge", b"y" * 5000, ttl=60)
    assert await store.get("huge") is None
    assert await store.get("small") == b"x"


async def test_an_expired_entry_is_a_miss_and_frees_its_bytes() -> None:
    store = MemoryStore(max_bytes=4096)
    await store.put("gone", b"z" * 100, ttl=-1)
    assert await store.get("gone") is None
    assert store.size_bytes == 0


async def test_redis_down_is_a_miss_never_an_error_and_back_is_a_hit_again(redis_server: RedisServer) -> None:
    link = RedisLink.from_settings(Settings(redis_url=redis_server.url, api_tokens=("t",)))
    await link.beat()
    store = RedisStore(link, max_value_bytes=1 << 20)
    value = bytes(range(256))  # every byte value survives the text round trip
    try:
        await store.put("k", value, ttl=60)
        assert await store.get("k") == value

        await redis_server.kill()
        assert await store.get("k") is None
        await store.put("k2", value, ttl=60)  # dropped, not raised
        assert await store.get("k2") is None

        await redis_server.start()  # empty: no persistence
        await link.beat()
        assert link.up
        await store.put("k3", value, ttl=60)
        assert await store.get("k3") == value
    finally:
        await link.aclose()
