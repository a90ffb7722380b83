"""Usage accounting: tokens in and out per key and model.

Each settled request adds its tokens here: to this process's totals, which reach the
Prometheus counter `gateway_key_tokens_total` every second and at each scrape (per process;
Prometheus adds the replicas up; kept off the request path, where a counter costs more than
a dict update), and,
with Redis, to the fleet's totals: one hash that every replica increments with HINCRBY,
atomic, so concurrent replicas never lose an update. Increments are sent in one batch
every FLUSH seconds (and at shutdown); while Redis is down they wait here and are sent
when it is back, so an outage loses nothing. The hash is bounded by keys x models, so it
needs no expiry.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable
from typing import cast

from attrs import define, field
from prometheus_client import Counter

from proxy.fleet.link import RedisDown, RedisLink, repeat
from proxy.observability.limit_metrics import KEY_TOKENS

log = logging.getLogger("proxy")

FLUSH = 1.0
DIRECTIONS = ("in", "out")

Totals = dict[str, dict[str, dict[str, int]]]  # key -> model -> direction -> tokens


@define
class UsageBook:
    link: RedisLink | None = None
    _mine: dict[tuple[str, str, str], int] = field(factory=lambda: defaultdict(int))
    _unsent: dict[tuple[str, str, str], int] = field(factory=lambda: defaultdict(int))
    _lock: asyncio.Lock = field(factory=asyncio.Lock)
    # What export_metrics() has passed to the counter so far, and the counter's children.
    _exported: dict[tuple[str, str, str], int] = field(factory=dict)
    _counters: dict[tuple[str, str, str], Counter] = field(factory=dict)

    def add(self, key: str, model: str, tokens_in: int, tokens_out: int) -> None:
        for direction, tokens in zip(DIRECTIONS, (tokens_in, tokens_out), strict=True):
            if tokens <= 0:
                continue
            labels = (key, model, direction)
            self._mine[labels] += tokens
            if self.link is not None:
                self._unsent[labels] += tokens

    def export_metrics(self) -> None:
        """Bring `gateway_key_tokens_total` up to this process's totals."""
        for labels, total in self._mine.items():
            delta = total - self._exported.get(labels, 0)
            if delta:
                counter = self._counters.get(labels)
                if counter is None:
                    key, model, direction = labels
                    counter = self._counters[labels] = KEY_TOKENS.labels(key=key, model=model, direction=direction)
                counter.inc(delta)
                self._exported[labels] = total

    @property
    def _hash(self) -> str:
        assert self.link is not None
        return self.link.key("usage")

    async def flush(self) -> None:
        """Send what Redis has not counted yet; kept for the next try if Redis is down."""
        if self.link is None:
            return
        async with self._lock:  # one batch at a time, so a retry never sends a batch twice
            if not self._unsent:
                return
            batch, self._unsent = self._unsent, defaultdict(int)
            client = self.link.client

            async def send() -> None:
                async with client.pipeline(transaction=False) as pipe:
                    for (key, model, direction), tokens in batch.items():
                        pipe.hincrby(self._hash, f"{key}\t{model}\t{direction}", tokens)
                    await pipe.execute()

            try:
                await self.link.run(send)
            except RedisDown:
                # Kept for the next try. Only a reply lost after Redis applied the batch
                # (a timeout at that very moment) would count it twice; dropping it would
                # lose every batch of an outage.
                for field_, tokens in batch.items():
                    self._unsent[field_] += tokens

    async def run(self) -> None:
        await repeat(FLUSH, self.flush, "usage flush")

    def mine(self) -> Totals:
        """What this process has counted since it started."""
        return _nest(self._mine)

    async def fleet(self) -> Totals:
        """Every replica's usage from Redis, with what this one has not sent yet; RedisDown
        when Redis cannot say."""
        if self.link is None:
            raise RedisDown("no redis configured")
        client = self.link.client

        async def read() -> dict[str, str]:
            # redis-py types its commands as sync-or-async; this client is the asyncio one.
            return await cast(Awaitable[dict[str, str]], client.hgetall(self._hash))

        raw = await self.link.run(read)
        counted: dict[tuple[str, str, str], int] = defaultdict(int)
        for name, value in raw.items():
            key, _, rest = name.partition("\t")
            model, _, direction = rest.rpartition("\t")
            counted[key, model, direction] += int(value)
        for field_, tokens in self._unsent.items():
            counted[field_] += tokens
        return _nest(counted)


def _nest(flat: dict[tuple[str, str, str], int]) -> Totals:
    totals: Totals = {}
    for (key, model, direction), tokens in sorted(flat.items()):
        totals.setdefault(key, {}).setdefault(model, {"in": 0, "out": 0})[direction] = tokens
    return totals
