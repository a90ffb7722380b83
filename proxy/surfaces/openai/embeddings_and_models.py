"""POST /v1/embeddings and GET /v1/models[/{model}]: OpenAI's shapes over the same backends.

Embeddings come as floats or, when `encoding_format` is "base64" (the official Python
client's default), as base64 of little-endian float32, which is what that client decodes.
The model list is the routing table's public models, or without a table every model a
backend reports; `owned_by` names the backends that can serve it.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from aiohttp import web

from proxy.app_keys import CATALOG, ROUTES, SETTINGS
from proxy.errors import RouteNotFound
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.openai.request_models import EmbeddingsV1Body, openai_embed_request
from proxy.surfaces.request_bodies import structure


async def embeddings_v1(request: web.Request) -> web.Response:
    raw = await read_json(request)
    body = structure(raw, EmbeddingsV1Body)
    embed = openai_embed_request(
        body, max_inputs=request.app[SETTINGS].embed_max_inputs, single=isinstance(raw["input"], str))
    provider, result = await service_of(request).embed(caller_of(request), embed)
    as_base64 = body.encoding_format == "base64"
    response = json_response({
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _base64(vector) if as_base64 else vector}
            for i, vector in enumerate(result.vectors)
        ],
        "model": body.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    })
    response.headers["X-Gateway-Provider"] = provider
    return response


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def _listed_models(request: web.Request) -> dict[str, dict[str, Any]]:
    reported = await request.app[CATALOG].reported()
    table = request.app[ROUTES].table
    owners: dict[str, list[str]] = {}
    if table.routes:
        for model_id, route in table.routes.items():
            owners[model_id] = [target.backend for target in route.backends]
    else:
        for backend, answer in reported.items():
            for name in answer if isinstance(answer, list) else []:
                owners.setdefault(name, []).append(backend)
    return {
        name: {"id": name, "object": "model", "created": 0, "owned_by": ",".join(backends)}
        for name, backends in sorted(owners.items())
    }


async def models_v1(request: web.Request) -> web.Response:
    return json_response({"object": "list", "data": list((await _listed_models(request)).values())})


async def model_v1(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    listed = await _listed_models(request)
    if name not in listed:
        raise RouteNotFound(f"no model named {name!r} is served here")
    return json_response(listed[name])
