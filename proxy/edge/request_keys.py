"""What the edge puts on every request, in one place: its id, when it arrived, its outcome
and its tenant; surfaces and the access log read them from here."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.serving.outcome import Outcome
from proxy.tenants.keyring import ANONYMOUS, Tenant

REQUEST_ID = web.RequestKey("request_id", str)
STARTED = web.RequestKey("started", float)
OUTCOME = web.RequestKey("outcome", Outcome)
TENANT = web.RequestKey("tenant", Tenant)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def elapsed_ms(request: web.Request) -> float:
    """Milliseconds since the request arrived."""
    return round((time.perf_counter() - request[STARTED]) * 1000, 3)


def tenant_of(request: web.Request) -> Tenant:
    """The caller's tenant; with auth disabled, everyone is the unlimited `anonymous`."""
    tenant: Tenant = request.get(TENANT, ANONYMOUS)
    return tenant
