"""POST /api/chat, /api/generate, /api/embed and /api/embeddings: Ollama's API on the gateway's
keys, limits, routing and fallback.

An Ollama backend gets the client's request with every field, under the routed model name,
and its answer goes back as it sent it (a single answer rebuilt from Ollama's stream,
backends/ollama_single.py); another backend gets it translated (request_models.py,
translation.py) and its answer comes back in Ollama's shape (answers.py). Either way the
X-Gateway-Provider header names who served it. Ollama streams unless `stream` is false.
"""

from __future__ import annotations

from aiohttp import web

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import STARTED
from proxy.llm import ChatResult, EmbedResult, NativeAnswer, NativeRequest
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.ollama import request_models
from proxy.surfaces.ollama.answers import Endpoint, OllamaLines, embed_answer, legacy_embedding_answer
from proxy.surfaces.ollama.ndjson_relay import PROVIDER_HEADER, relay_ndjson
from proxy.surfaces.request_bodies import invalid


async def chat(request: web.Request) -> web.StreamResponse:
    native = request_models.chat_request(await _object(request))
    _check_messages(native, request.app[SETTINGS].max_messages)
    return await _generation(request, native, "chat")


async def generate(request: web.Request) -> web.StreamResponse:
    return await _generation(request, request_models.generate_request(await _object(request)), "generate")


async def embed(request: web.Request) -> web.Response:
    native = request_models.embed_request(await _object(request), max_inputs=request.app[SETTINGS].embed_max_inputs)
    return await _embedding(request, native)


async def embeddings(request: web.Request) -> web.Response:
    return await _embedding(request, request_models.legacy_embeddings_request(await _object(request)))


async def _object(request: web.Request) -> dict[str, object]:
    raw = await read_json(request)
    if not isinstance(raw, dict):
        raise invalid(["expected an object @ $"])
    return raw


def _check_messages(native: NativeRequest, max_messages: int) -> None:
    messages = native.body.get("messages")
    if isinstance(messages, list) and len(messages) > max_messages:
        raise invalid([f"at most {max_messages} messages are accepted @ $.messages"])


async def _generation(request: web.Request, native: NativeRequest, endpoint: Endpoint) -> web.StreamResponse:
    # As Ollama: a model's thinking is shown unless the request said `think: false`.
    lines = OllamaLines(endpoint=endpoint, model=native.public_model, started=request[STARTED],
                        thinking=native.body.get("think") is not False)
    if native.stream:
        return await relay_ndjson(request, native, lines)
    provider, result = await service_of(request).native(caller_of(request), native)
    if isinstance(result, NativeAnswer):
        response = _as_sent(result)
    elif isinstance(result, ChatResult):
        response = json_response(lines.whole(result))
    else:  # the router serves a generation with a generation
        raise TypeError(f"an embedding answered {native.path}")
    response.headers[PROVIDER_HEADER] = provider
    return response


async def _embedding(request: web.Request, native: NativeRequest) -> web.Response:
    provider, result = await service_of(request).native(caller_of(request), native)
    if isinstance(result, NativeAnswer):
        response = _as_sent(result)
    elif isinstance(result, EmbedResult):
        legacy = native.path == "/api/embeddings"
        answer = legacy_embedding_answer(result) if legacy else embed_answer(
            native.public_model, result, request[STARTED])
        response = json_response(answer)
    else:
        raise TypeError(f"a chat answered {native.path}")
    response.headers[PROVIDER_HEADER] = provider
    return response


def _as_sent(answer: NativeAnswer) -> web.Response:
    return web.Response(body=answer.body, content_type="application/json", charset="utf-8")
