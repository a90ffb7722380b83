"""GET /api/v1/health and /api/v1/inference/health: can any backend serve right now?

Every backend is probed at once, each bounded by PROXY_HEALTH_TIMEOUT, and reported with
what the router knows of it: its breaker state (closed, open, half_open), consecutive
failures and requests in flight. The answer is 200 when at least one backend answers its
probe, 503 when none does or while the gateway is shutting down. URLs carry no credentials.

Probe results are shared for PROBE_TTL (registry.py): however often health is asked, each
upstream is probed about once a second. A call counts against the caller's key like any
request (its requests per minute and concurrency, no tokens). The details (URLs, errors,
latencies, breaker states, requests in flight, Redis) are for operators: admin keys, the
plain PROXY_API_TOKENS (which the operator sets in the environment) and any caller with
auth off. Other keys see the status and each backend's name, provider and health.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.app_keys import ADMISSION, DRAIN, LIMITER, REGISTRY, ROUTER, SETTINGS
from proxy.edge.request_keys import elapsed_ms
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response


async def health(request: web.Request) -> web.Response:
    caller = caller_of(request)
    async with service_of(request).counted(caller):
        probes = {backend.name: probe for backend, probe in await request.app[REGISTRY].probe_all()}
    operator = caller.tenant.operator or request.app[SETTINGS].auth_disabled
    backends = []
    for member in request.app[ROUTER].members:
        probe = probes[member.backend.name]
        backend: dict[str, Any] = {
            "name": member.backend.name, "provider": member.backend.provider, "healthy": probe.healthy}
        if operator:
            backend.update({
                "url": member.backend.display_url,
                "latency_ms": probe.latency_ms,
                "error": probe.error,
                "state": member.breaker.state,
                "consecutive_failures": member.breaker.consecutive_failures,
                "in_flight": member.in_flight,
            })
        backends.append(backend)
    draining = request.app[DRAIN].draining
    serving = any(probe.healthy for probe in probes.values()) and not draining
    answer: dict[str, Any] = {"status": "draining" if draining else "ok" if serving else "unavailable",
                              "backends": backends}
    if operator:
        answer.update({"in_flight": request.app[ADMISSION].in_flight, **fleet_health(request)})
    answer["latency_ms"] = elapsed_ms(request)
    return json_response(answer, status=200 if serving else 503)


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
