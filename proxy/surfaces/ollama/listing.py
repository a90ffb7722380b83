"""What Ollama's clients ask before they chat: GET /api/tags, GET /api/ps, POST /api/show,
GET /api/version, and GET or HEAD / ("Ollama is running"), which some clients probe.

The model list is what the key may use: with a routing table, its public names (each with
Ollama's own entry for the model it routes to, where an Ollama backend has it); without
one, every model the Ollama backends list, then those the other backends list. /api/ps is
the Ollama backends' loaded models under the same names. /api/show is answered by the
Ollama backend a model routes to, or, for a model only another backend serves, with the
little the gateway knows (no template, no parameters). /api/version is the first Ollama
backend's, or the Ollama API version this surface follows when none answers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from attrs import frozen

from proxy.app_keys import CATALOG, ROUTES
from proxy.errors import UpstreamError
from proxy.llm import ModelQuery, NativeAnswer, NativeRequest
from proxy.serving.model_table import RouteTable
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.ollama.answers import created_at
from proxy.surfaces.ollama.ndjson_relay import PROVIDER_HEADER
from proxy.surfaces.request_bodies import ModelId, invalid, structure

# The Ollama release whose API (and recorded traffic, tests/data) this surface follows.
OLLAMA_API_VERSION = "0.13.5"
_NO_DETAILS = {"parent_model": "", "format": "", "family": "", "families": None, "parameter_size": "",
               "quantization_level": ""}


@frozen
class ShowBody:
    model: ModelId | None = None
    name: ModelId | None = None  # what older clients send
    verbose: bool | None = None


async def root(request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


async def version(request: web.Request) -> web.Response:
    for _backend, answer in await service_of(request).native_reads("ollama", "/api/version"):
        if isinstance(answer, dict) and isinstance(answer.get("version"), str):
            return json_response({"version": answer["version"]})
    return json_response({"version": OLLAMA_API_VERSION})


async def tags(request: web.Request) -> web.Response:
    listed = await _ollama_entries(request, "/api/tags")
    table = request.app[ROUTES].table
    if table.routes:
        models = [_routed_entry(public, listed, table) for public in table.routes]
    else:
        models = [entry for entries in listed.values() for entry in entries.values()]
        seen = {entry.get("name") for entry in models}
        for backend, answer in (await request.app[CATALOG].reported()).items():
            for name in answer if isinstance(answer, list) and backend not in listed else []:
                if name not in seen:
                    seen.add(name)
                    models.append(_bare_entry(name))
    tenant = caller_of(request).tenant
    unique = {entry["name"]: entry for entry in models if tenant.may_use(entry["name"])}
    return json_response({"models": list(unique.values())})


async def ps(request: web.Request) -> web.Response:
    listed = await _ollama_entries(request, "/api/ps")
    table = request.app[ROUTES].table
    public = {(target.backend, _plain(target.model)): name
              for name, route in table.routes.items() for target in route.backends}
    tenant = caller_of(request).tenant
    models = []
    for backend, entries in listed.items():
        for name, entry in entries.items():
            shown = public.get((backend, _plain(name)), None if table.refuse_unknown else name)
            if shown is not None and tenant.may_use(shown):
                models.append({**entry, "name": shown, "model": shown})
    return json_response({"models": models})


async def show(request: web.Request) -> web.Response:
    raw = await read_json(request)
    body = structure(raw, ShowBody)
    model = body.model or body.name
    if model is None:
        raise invalid(["required field missing @ $.model"])
    native = NativeRequest(api="ollama", path="/api/show", body={**raw, "model": model}, model=model,
                           public_model=model, stream=False, translated=ModelQuery(model))
    provider, result = await service_of(request).native(caller_of(request), native)
    if isinstance(result, NativeAnswer):
        response = web.Response(body=result.body, content_type="application/json", charset="utf-8")
    else:
        response = json_response({"modelfile": "", "parameters": "", "template": "", "details": _NO_DETAILS,
                                  "model_info": {}, "capabilities": ["completion"], "modified_at": created_at()})
    response.headers[PROVIDER_HEADER] = provider
    return response


async def _ollama_entries(request: web.Request, path: str) -> dict[str, dict[str, dict[str, Any]]]:
    """backend name -> model name -> Ollama's entry, for each Ollama backend that answered."""
    listed: dict[str, dict[str, dict[str, Any]]] = {}
    for backend, answer in await service_of(request).native_reads("ollama", path):
        if isinstance(answer, UpstreamError) or not isinstance(answer.get("models"), list):
            continue
        entries = [entry for entry in answer["models"] if isinstance(entry, dict)]
        listed[backend.name] = {entry["name"]: entry for entry in entries if isinstance(entry.get("name"), str)}
    return listed


def _routed_entry(public: str, listed: dict[str, dict[str, dict[str, Any]]], table: RouteTable) -> dict[str, Any]:
    """Ollama's entry for the first of the route's targets an Ollama backend lists, renamed."""
    for target in table.routes[public].backends:
        for name, entry in listed.get(target.backend, {}).items():
            if _plain(name) == _plain(target.model):
                return {**entry, "name": public, "model": public}
    return _bare_entry(public)


def _bare_entry(name: str) -> dict[str, Any]:
    """A model no Ollama backend describes: its name, and empty details."""
    return {"name": name, "model": name, "modified_at": "1970-01-01T00:00:00Z", "size": 0, "digest": "",
            "details": _NO_DETAILS}


def _plain(name: str) -> str:
    """A model name without Ollama's implied tag: "llama3.2:latest" is "llama3.2"."""
    return name.removesuffix(":latest")
