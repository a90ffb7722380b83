"""A bound on requests in flight across the whole gateway.

Beyond `limit`, a request waits at most `queue_timeout` for a slot, then gets 503
`overloaded` with `Retry-After`. The number waiting is bounded too (by `limit`), so memory
stays bounded however many clients connect. A stream holds its slot until it ends.
Health checks are not admitted through here: they must answer under load.

A key's own concurrency limit bites first, before the request may wait for or take a
global slot: without this, a key limited to one concurrent request could hold every slot
with requests whose bodies arrive at a trickle (the limiter sees a request only once its
body is read). Counted here per process, this never refuses what the key's limit allows;
the limiter (proxy/limits/) still enforces the limit across a fleet.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from attrs import define, field

from proxy.edge.request_keys import Handler, tenant_of
from proxy.errors import Overloaded, RateLimited
from proxy.observability.limit_metrics import RATE_LIMITED
from proxy.tenants.keyring import Tenant


@define
class Admission:
    limit: int
    queue_timeout: float
    _slots: asyncio.Semaphore = field(init=False)
    _waiting: int = 0
    # Requests admitted or waiting, by key, for keys with a concurrency limit.
    _by_key: dict[str, int] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.limit)

    @property
    def in_flight(self) -> int:
        return self.limit - self._slots._value

    async def _acquire(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        if self._waiting >= self.limit:
            raise Overloaded(f"{self.limit} requests in flight and as many waiting")
        self._waiting += 1
        try:
            async with asyncio.timeout(self.queue_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise Overloaded(
                f"{self.limit} requests in flight; no slot freed within {self.queue_timeout:g} s"
            ) from None
        finally:
            self._waiting -= 1

    def _enter_key(self, tenant: Tenant) -> bool:
        """Count the request against its key's concurrency; False when the key has no limit."""
        cap = tenant.limits.concurrent_requests
        if cap is None:
            return False
        held = self._by_key.get(tenant.name, 0)
        if held >= cap:
            RATE_LIMITED.labels(key=tenant.name, limit="concurrent_requests").inc()
            raise RateLimited(f"key {tenant.name!r} is at its concurrent_requests limit ({cap}); retry in 1 s",
                              limit="concurrent_requests", limit_value=cap, retry_after=1)
        self._by_key[tenant.name] = held + 1
        return True

    def _leave_key(self, tenant: Tenant) -> None:
        held = self._by_key.pop(tenant.name) - 1
        if held:
            self._by_key[tenant.name] = held

    async def admitted(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The handler's answer, as a step of the edge (chain.py): inference (POST) requests take
        a place in flight, their key's own first; reads do not, so that health and metrics
        answer under load."""
        if request.method != "POST":
            return await handler(request)
        tenant = tenant_of(request)
        counted = self._enter_key(tenant)
        try:
            await self._acquire()
            try:
                return await handler(request)
            finally:
                self._slots.release()
        finally:
            if counted:
                self._leave_key(tenant)
