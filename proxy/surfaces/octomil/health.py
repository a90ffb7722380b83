"""GET /api/v1/health and /api/v1/inference/health: can any backend serve right now?

Every backend is probed at once, each bounded by PROXY_HEALTH_TIMEOUT, and reported with
what the router knows of it: its breaker state (closed, open, half_open), consecutive
failures and requests in flight. The answer is 200 when at least one backend answers its
probe, 503 when none does or while the gateway is shutting down. URLs carry no credentials.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.app_keys import ADMISSION, DRAIN, LIMITER, REGISTRY, ROUTER, SETTINGS
from proxy.edge.request_keys import elapsed_ms
from proxy.surfaces.json_io import json_response


async def health(request: web.Request) -> web.Response:
    probes = {backend.name: probe for backend, probe in await request.app[REGISTRY].probe_all()}
    backends = []
    for member in request.app[ROUTER].members:
        probe = probes[member.backend.name]
        backends.append({
            "name": member.backend.name,
            "provider": member.backend.provider,
            "url": member.backend.display_url,
            "healthy": probe.healthy,
            "latency_ms": probe.latency_ms,
            "error": probe.error,
            "state": member.breaker.state,
            "consecutive_failures": member.breaker.consecutive_failures,
            "in_flight": member.in_flight,
        })
    draining = request.app[DRAIN].draining
    serving = any(probe.healthy for probe in probes.values()) and not draining
    status = "draining" if draining else "ok" if serving else "unavailable"
    return json_response(
        {
            "status": status,
            "backends": backends,
            "in_flight": request.app[ADMISSION].in_flight,
            **fleet_health(request),
            "latency_ms": elapsed_ms(request),
        },
        status=200 if serving else 503,
    )


def fleet_health(request: web.Request) -> dict[str, Any]:
    """Where limits are decided right now, and Redis's state when it is configured.

    A Redis that is down does not make the gateway unhealthy: it serves under its failure
    policy, which `limits` names (`local_share` or `refusing`).
    """
    limiter = request.app[LIMITER]
    link = limiter.link
    answer: dict[str, Any] = {"limits": limiter.mode}
    if link is not None:
        answer["redis"] = {
            "url": link.display_url,
            "up": link.up,
            "since": round(link.since, 3),
            "error": link.error,
            "failure_policy": request.app[SETTINGS].redis_failure,
            "replicas": link.fleet_size,
        }
    return answer
