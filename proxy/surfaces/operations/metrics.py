"""GET /metrics in Prometheus' text format, and the task that keeps backend gauges current."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from proxy.app_keys import ADMISSION, LIMITER, ROUTER
from proxy.background import every, running
from proxy.observability.metrics import IN_FLIGHT, set_backend_state

# The text format every Prometheus version reads (the names here need no newer escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _refresh_gauges(app: web.Application) -> None:
    IN_FLIGHT.set(app[ADMISSION].in_flight)
    app[LIMITER].usage.export_metrics()
    for member in app[ROUTER].members:
        set_backend_state(member.backend.name, member.backend.provider, member.breaker.state)


async def backend_gauges_ctx(app: web.Application) -> AsyncIterator[None]:
    """Keeps this process's gauges (requests in flight, backends) current: a breaker turns
    half_open by the clock alone, and with several workers the scrape may land on any of them."""

    async with running(every(1, lambda: _refresh_gauges(app), first_at_once=True)):
        yield


async def metrics(request: web.Request) -> web.Response:
    _refresh_gauges(request.app)
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # the library has no annotations here
    else:
        registry = REGISTRY
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
