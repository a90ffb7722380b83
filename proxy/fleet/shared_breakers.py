"""Backend cooldowns shared by the replicas of a fleet.

Each replica keeps its own breakers (proxy/backends/breaker.py), fed by its own requests. With
Redis, a breaker that opens is published as a key that expires with its cooldown, and
every replica looks at those keys twice a second: a backend one replica found down rests
on all of them, instead of each replica paying its own failures to find out. A breaker
that closes again (its trial succeeded) removes the key. Replicas must give backends the
same names (the same OLLAMA_BASE_URL / OPENAI_API_ENDPOINT lists), which they do when they
run from one configuration.

While Redis is down each replica just uses its own breakers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from attrs import define, field

from proxy.backends.breaker import Breaker
from proxy.fleet.link import RedisDown, RedisLink

log = logging.getLogger("proxy")

POLL = 0.5  # seconds between looks at the other replicas' cooldowns


@define
class SharedBreakers:
    link: RedisLink
    breakers: dict[str, Breaker]
    _news: asyncio.Queue[tuple[str, bool]] = field(factory=asyncio.Queue)

    @classmethod
    def attach(cls, link: RedisLink, breakers: dict[str, Breaker]) -> SharedBreakers:
        shared = cls(link=link, breakers=breakers)
        for name, breaker in breakers.items():
            breaker.on_change = functools.partial(shared._changed, name)
        return shared

    def _changed(self, name: str, opened: bool) -> None:
        self._news.put_nowait((name, opened))

    def _key(self, name: str) -> str:
        return self.link.key("breaker", name)

    async def publish(self, name: str, opened: bool) -> None:
        client, key = self.link.client, self._key(name)
        if opened:
            cooldown_ms = max(1, int(self.breakers[name].reopens_in() * 1000))
            await self.link.run(lambda: client.set(key, self.link.replica_id, px=cooldown_ms))
        else:
            await self.link.run(lambda: client.delete(key))

    async def poll(self) -> None:
        """Rest every breaker that another replica has opened, for what is left of it."""
        names = list(self.breakers)
        client = self.link.client

        async def remaining() -> list[int]:
            async with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.pttl(self._key(name))
                return list(await pipe.execute())

        for name, left_ms in zip(names, await self.link.run(remaining), strict=True):
            if left_ms > 0:
                self.breakers[name].rest(left_ms / 1000)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        while True:
            try:
                async with asyncio.timeout_at(next_poll):
                    name, opened = await self._news.get()
            except TimeoutError:
                next_poll = loop.time() + POLL
                await _quietly(self.poll)
            else:
                await _quietly(functools.partial(self.publish, name, opened))


async def _quietly(call: Callable[[], Awaitable[None]]) -> None:
    try:
        await call()
    except RedisDown:
        pass  # the link logs it; the local breakers carry on
    except Exception:  # logged with its traceback: the loop must outlive one failure
        log.exception("sharing backend cooldowns failed")
