"""Where cached answers live: this process's memory (LRU, bounded by bytes) or Redis.

Both take and give bytes under a key, each entry with a time to live. Neither raises:
a Redis that is down, slow or full makes a miss (and a write that did not happen), never
an error, since an answer can always be asked of the upstream instead.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from attrs import define, field

from proxy.fleet.link import RedisDown, RedisLink

# What an entry costs beyond its key and value: the OrderedDict node, the tuple, two
# objects' headers. Counted so that many tiny entries cannot exceed the bound either.
ENTRY_OVERHEAD = 200


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    @property
    def size_bytes(self) -> int:
        """Bytes held now, as far as this replica knows (0 for Redis, which bounds itself)."""


@define
class MemoryStore:
    """Least recently used entries leave first once `max_bytes` would be exceeded."""

    max_bytes: int
    _entries: OrderedDict[str, tuple[bytes, float]] = field(factory=OrderedDict)
    _bytes: int = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if time.monotonic() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        cost = _cost(key, value)
        if cost > self.max_bytes:
            return  # larger than the whole cache: never stored
        if key in self._entries:
            self._drop(key)
        while self._bytes + cost > self.max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[key] = (value, time.monotonic() + ttl)
        self._bytes += cost

    def _drop(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self._bytes -= _cost(key, value)


def _cost(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


@define
class RedisStore:
    """Entries as Redis strings with a TTL (SET PX), shared by every replica.

    Values go through the fleet's link (proxy/fleet/link.py), so a Redis that is down is
    known at once and costs nothing until the heartbeat finds it back. The link decodes
    replies as text, so values are stored as Latin-1 text: every byte maps to one char.
    """

    link: RedisLink
    max_value_bytes: int

    @property
    def size_bytes(self) -> int:
        return 0

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.link.run(lambda: self.link.client.get(self._key(key)))
        except RedisDown:
            return None
        return value.encode("latin-1") if isinstance(value, str) else None

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        if len(value) > self.max_value_bytes:
            return
        text = value.decode("latin-1")
        try:
            await self.link.run(lambda: self.link.client.set(self._key(key), text, px=max(1, int(ttl * 1000))))
        except RedisDown:
            return

    def _key(self, key: str) -> str:
        return self.link.key("cache", key)
