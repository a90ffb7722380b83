"""GET /api/v1/health and /api/v1/inference/health: can any backend serve right now?

Every backend is probed at once, each bounded by PROXY_HEALTH_TIMEOUT. The answer is 200
when at least one is healthy, 503 when none is. URLs are shown without credentials.
"""

from __future__ import annotations

from aiohttp import web

from proxy.handlers.json_io import json_response
from proxy.middlewares import elapsed_ms
from proxy.state import REGISTRY


async def health(request: web.Request) -> web.Response:
    probes = await request.app[REGISTRY].probe_all()
    backends = [
        {
            "name": backend.name,
            "provider": backend.provider,
            "url": backend.display_url,
            "healthy": probe.healthy,
            "latency_ms": probe.latency_ms,
            "error": probe.error,
        }
        for backend, probe in probes
    ]
    serving = any(probe.healthy for _, probe in probes)
    return json_response(
        {"status": "ok" if serving else "unavailable", "backends": backends, "latency_ms": elapsed_ms(request)},
        status=200 if serving else 503,
    )
