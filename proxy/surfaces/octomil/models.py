"""GET /api/v1/models: the public models, what each is called on each backend, and whether
each backend reports having it right now.

What the backends report (Ollama's /api/tags, the OpenAI endpoint's /models) comes from
the `ModelCatalog`, fetched at most every few seconds, so clients may poll this freely. Without a routing
table every model a backend reports is listed under its own name, since names pass through.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.app_keys import CATALOG, ROUTES
from proxy.surfaces.json_io import json_response


async def models(request: web.Request) -> web.Response:
    reported = await request.app[CATALOG].reported()
    table = request.app[ROUTES].table

    def availability(backend: str, model: str) -> bool | None:
        answer = reported.get(backend)
        return model in answer if isinstance(answer, list) else None  # None: the backend did not say

    listed: list[dict[str, Any]] = []
    if table.routes:
        for model_id, route in table.routes.items():
            listed.append({
                "model_id": model_id,
                "kinds": list(route.kinds),
                "max_tokens": {"default": route.max_tokens.default, "max": route.max_tokens.max},
                "backends": [{"backend": t.backend, "model": t.model, "available": availability(t.backend, t.model)}
                             for t in route.backends],
            })
    else:
        names = sorted({name for answer in reported.values() if isinstance(answer, list) for name in answer})
        for name in names:
            listed.append({
                "model_id": name,
                "backends": [{"backend": backend, "model": name, "available": availability(backend, name)}
                             for backend in reported],
            })
    return json_response({
        "object": "list",
        "routing": "table" if table.routes else "passthrough",
        "unknown_models": "refuse" if table.refuse_unknown else "pass",
        "models": listed,
        "backends": {name: answer if isinstance(answer, list) else {"error": answer}
                     for name, answer in reported.items()},
    })
