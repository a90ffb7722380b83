"""The connection to Redis, whether it is up, and how many replicas share it.

Every Redis call of the gateway goes through `RedisLink.run`, which bounds it by
PROXY_REDIS_TIMEOUT and never retries: a Redis that does not answer costs one request at
most that long, after which the link is marked down and callers get `RedisDown` at once,
without waiting, until the heartbeat (every second) reaches Redis again. Going down and
coming back are logged once each and shown by `gateway_redis_up` and health; what the
gateway does meanwhile is the callers' policy (proxy/tenants/limiter.py).

The heartbeat also registers this replica (an entry that expires unless renewed), so each
replica knows how many share the limits: while Redis is down, each enforces its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from attrs import define, field
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from proxy.observability.limit_metrics import redis_up
from proxy.settings.config import Settings, redis_display

log = logging.getLogger("proxy")

T = TypeVar("T")

HEARTBEAT = 1.0  # seconds between heartbeats (and recovery probes)
REPLICA_TTL = 5.0  # a replica that stops beating drops out of the fleet after this long

# Registers the replica until now + ttl, forgets expired ones, and counts the rest; Redis's
# own clock, so replicas' clocks need not agree.
_HEARTBEAT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""

FAILURES = (RedisError, OSError, TimeoutError)
NEVER_CONTACTED = "not contacted yet"


class RedisDown(Exception):
    """Redis could not be asked: unreachable, too slow, or known to be down."""


async def repeat(every: float, step: Callable[[], Awaitable[None]], what: str) -> None:
    """`step()` every `every` seconds until cancelled. Redis being down is the step's own
    business; any other failure is logged and the loop goes on, so that one bug cannot
    stop the heartbeat, and with it the recovery, for good."""
    while True:
        try:
            await step()
        except RedisDown:
            pass
        except Exception:  # logged with its traceback: the loop must outlive one failure
            log.exception("%s failed; trying again in %g s", what, every)
        await asyncio.sleep(every)


@define
class RedisLink:
    client: Redis
    display_url: str
    prefix: str
    timeout: float
    replica_id: str = field(factory=lambda: secrets.token_hex(6))
    up: bool = False
    # Wall-clock time of the last change of `up` (for health), and why it went down.
    since: float = field(factory=time.time)
    error: str | None = NEVER_CONTACTED
    fleet_size: int = 1
    _on_recovery: list[Callable[[], Awaitable[None]]] = field(factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisLink:
        if settings.redis_url is None:
            raise ValueError("no PROXY_REDIS_URL")
        client = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
            # No retries: a retry would wait; the caller has a policy for a Redis that is down.
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        redis_up().set(0)
        return cls(client=client, display_url=redis_display(settings.redis_url), prefix=settings.redis_prefix,
                   timeout=settings.redis_timeout)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def on_recovery(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` each time Redis comes back after being down."""
        self._on_recovery.append(callback)

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`'s result; RedisDown at once if Redis is known down, or if it fails now."""
        if not self.up:
            raise RedisDown(self.error or "redis is down")
        try:
            async with asyncio.timeout(self.timeout):
                return await call()
        except FAILURES as exc:
            self._went_down(exc)
            raise RedisDown(self.error or "redis is down") from exc

    async def beat(self) -> None:
        """Register this replica, learn the fleet's size; notice Redis coming back."""
        try:
            async with asyncio.timeout(self.timeout):
                size = await self.client.eval(  # type: ignore[misc]  # redis-py types eval as sync-or-async
                    _HEARTBEAT_LUA, 1, self.key("replicas"), self.replica_id, int(REPLICA_TTL * 1000))
        except FAILURES as exc:
            self._went_down(exc)
            return
        self.fleet_size = max(1, int(size))
        if not self.up:
            self._came_back()
            for callback in self._on_recovery:
                try:
                    await callback()
                except RedisDown:
                    return  # down again already; the next beat tries again

    async def maintain(self) -> None:
        await repeat(HEARTBEAT, self.beat, "redis heartbeat")

    async def aclose(self) -> None:
        if self.up:
            with contextlib.suppress(*FAILURES):
                async with asyncio.timeout(self.timeout):
                    await self.client.zrem(self.key("replicas"), self.replica_id)
        await self.client.aclose()

    def _went_down(self, exc: BaseException) -> None:
        # The exception's class and text: redis-py's messages carry host and port, no password.
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ") if str(exc) else type(exc).__name__
        if self.up or self.error != reason:
            log.warning("redis %s unavailable (%s): limits fall back to the failure policy", self.display_url, reason)
        if self.up:
            self.since = time.time()
        self.up = False
        self.error = reason
        redis_up().set(0)

    def _came_back(self) -> None:
        if self.error == NEVER_CONTACTED:
            log.info("redis %s connected: limits and health are shared across the fleet (%d replicas)",
                     self.display_url, self.fleet_size)
        else:
            log.warning("redis %s reachable again: limits and health are shared across the fleet (%d replicas)",
                        self.display_url, self.fleet_size)
        self.up = True
        self.since = time.time()
        self.error = None
        redis_up().set(1)
