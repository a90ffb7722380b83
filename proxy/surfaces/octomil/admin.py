"""GET /api/v1/admin/usage: tokens in and out per key and model, for admin keys only.

With Redis the totals are the fleet's (every replica's, since the Redis hash was created,
plus what this replica has not flushed yet; other replicas flush every second); without
Redis, or while it is down, they are this process's since it started, and `scope` says
which. Each key of the keys file is listed with its limits, even before its first request,
and with what this replica counts against them right now (`window_here`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.app_keys import KEYS, LIMITER, SETTINGS
from proxy.edge.request_keys import elapsed_ms, tenant_of
from proxy.errors import Forbidden
from proxy.fleet.link import RedisDown
from proxy.surfaces.json_io import json_response


async def usage(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    if not (tenant.admin or request.app[SETTINGS].auth_disabled):
        raise Forbidden(f"key {tenant.name!r} is not an admin key (admin = true in the keys file)")
    limiter = request.app[LIMITER]
    scope = "this_process"
    totals = limiter.usage.mine()
    if limiter.link is not None:
        try:
            totals = await limiter.usage.fleet()
            scope = "fleet"
        except RedisDown:
            pass
    keys: dict[str, Any] = {}
    for known in request.app[KEYS].tenants:
        keys[known.name] = {"limits": known.limits.to_json(), "models": {}}
    for name, models in totals.items():
        entry = keys.setdefault(name, {"limits": None, "models": {}})
        entry["models"] = models
    for name, entry in keys.items():
        models = entry["models"].values()
        entry["total"] = {"in": sum(m["in"] for m in models), "out": sum(m["out"] for m in models)}
        # What this replica counts against each limit now (its own requests of the last minute).
        entry["window_here"] = limiter.local.window(name)
    return json_response({
        "scope": scope,
        "limits": limiter.mode,
        "keys": keys,
        "latency_ms": elapsed_ms(request),
    })
