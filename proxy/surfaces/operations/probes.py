"""GET /livez and /readyz: unauthenticated probes for kubelet, load balancers and Docker.

They answer from what the process already knows, never by calling an upstream: a kubelet
probes every few seconds, and a probe that fanned out to every backend would add load in
proportion to the number of replicas and fail with the slowest upstream. (The full check,
which does call every backend, is GET /api/v1/health, behind the token.)

livez   the process is up and its event loop answers: 200, or 503 once shutdown has begun.
readyz  the gateway can take traffic: 200 when it is not shutting down and at least one
        backend's breaker is not open (cooling down after consecutive failures); else 503.
        A breaker reopens for a trial by itself after PROXY_BREAKER_COOLDOWN, so a replica
        taken out of rotation because every backend failed comes back without traffic.

The bodies hold a status and counts only: no backend names, URLs or keys, since anyone who
can reach the port can read them.
"""

from __future__ import annotations

from aiohttp import web

from proxy.app_keys import DRAIN, ROUTER
from proxy.surfaces.json_io import json_response


async def livez(request: web.Request) -> web.Response:
    if request.app[DRAIN].draining:
        return json_response({"status": "shutting_down"}, status=503)
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    members = request.app[ROUTER].members
    cooling_down = sum(1 for member in members if member.breaker.state == "open")
    backends = {"total": len(members), "cooling_down": cooling_down}
    if request.app[DRAIN].draining:
        return json_response({"status": "shutting_down", "backends": backends}, status=503)
    if cooling_down == len(members):
        return json_response({"status": "unavailable", "backends": backends}, status=503)
    return json_response({"status": "ready", "backends": backends})
