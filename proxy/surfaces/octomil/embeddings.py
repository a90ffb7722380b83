"""POST /api/v1/embeddings: both the OpenAI-style `data` list and the documented `embeddings`."""

from __future__ import annotations

from aiohttp import web

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import elapsed_ms
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.octomil.request_models import EmbeddingsBody, embed_request
from proxy.surfaces.request_bodies import structure


async def embeddings(request: web.Request) -> web.Response:
    raw = await read_json(request)
    body = structure(raw, EmbeddingsBody)
    single = isinstance(raw["input"], str)
    embed = embed_request(body, max_inputs=request.app[SETTINGS].embed_max_inputs, single=single)
    provider, result = await service_of(request).embed(caller_of(request), embed)
    return json_response({
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(result.vectors)
        ],
        "embeddings": result.vectors,
        "model": body.model_id,
        "model_id": body.model_id,
        "provider": provider,
        # The Node and browser SDKs read usage unconditionally: it is always present.
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        "latency_ms": elapsed_ms(request),
    })
