"""The Service's part for requests in an upstream's own API (NativeRequest: the Ollama
surface), in the same order as a chat: model table -> reservation -> router -> settled ->
outcome. The answer cache is not used: these answers pass through as the upstream sent
them. Also the calls of no model: the read-only endpoints of every backend that speaks the
API (Ollama's tags, ps, version), and model management relayed to one of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs

from proxy.backends.base import Backend
from proxy.errors import RouteNotFound, ShuttingDown, UpstreamError
from proxy.llm import (
    ChatResult,
    EmbedRequest,
    EmbedResult,
    ModelQuery,
    NativeAnswer,
    NativeItem,
    NativeRequest,
    Relayed,
    Usage,
)
from proxy.serving.model_table import Route
from proxy.tenants.estimate import TokenEstimate, embed_estimate, generation_estimate

if TYPE_CHECKING:
    from proxy.serving.service import Caller, ServedStream, Service


async def serve(
    service: Service, caller: Caller, request: NativeRequest,
) -> tuple[str, NativeAnswer | ChatResult | EmbedResult | ModelQuery]:
    caller.outcome.model = request.public_model
    request, route, estimate = _resolved(service, request)
    caller.forward()
    async with service.limiter.reserve(caller.tenant, request.public_model, estimate) as reservation:
        backend, result = await service.router.serve_native(request, route)
        usage = _usage_of(result)
        reservation.record(usage, output=result.output if isinstance(result, ChatResult) else "")
    caller.outcome.served(backend.provider, usage)
    return backend.provider, result


@asynccontextmanager
async def stream(service: Service, caller: Caller, request: NativeRequest) -> AsyncIterator[ServedStream[NativeItem]]:
    """As Service.stream: registered with the drain, reserved, its first line within the
    backend's first-token timer; closed and settled however the block ends."""
    from proxy.serving.service import ServedStream, _settled

    caller.outcome.model = request.public_model
    request, route, estimate = _resolved(service, request)
    caller.forward()
    opened = False
    try:
        async with (
            service.drain.stream() as cutoff,
            service.limiter.reserve(caller.tenant, request.public_model, estimate) as reservation,
        ):
            first = await service.router.open_native_stream(request, route)
            caller.outcome.served(first.backend.provider)
            async with first.closing() as items, aclosing(
                    _settled(items, reservation, caller.outcome, first.backend)) as settled:
                opened = True
                yield ServedStream(first.backend.provider, first.backend.name, settled, cutoff)
    except TimeoutError:
        if opened or not cutoff.expired():
            raise
        raise ShuttingDown("the gateway is shutting down") from None


async def reads(service: Service, api: str, path: str) -> list[tuple[Backend, Any]]:
    """GET `path` of every backend that speaks `api`: each one's JSON, or its UpstreamError."""
    backends = [member.backend for member in service.router.members if member.backend.speaks(api)]

    async def read(backend: Backend) -> Any:
        try:
            return await backend.native_get(path)
        except UpstreamError as exc:
            return exc

    return list(zip(backends, await asyncio.gather(*(read(b) for b in backends)), strict=True))


@asynccontextmanager
async def manage(
    service: Service, caller: Caller, api: str, name: str | None, method: str, path: str,
    data: bytes | AsyncIterator[bytes] | None, content_type: str | None,
) -> AsyncIterator[Relayed]:
    """Model management, relayed as it is to the backend speaking `api` named `name` (or the
    first); the caller is trusted to be an admin: the surface checks."""
    target = next((member.backend for member in service.router.members
                   if member.backend.speaks(api) and name in (None, member.backend.name)), None)
    if target is None:
        raise RouteNotFound(f"no {api} backend named {name!r}" if name else f"no {api} backend is configured")
    caller.outcome.served(target.provider)
    caller.forward()
    async with target.relay(method, path, data, content_type) as relayed:
        yield relayed


def _resolved(service: Service, request: NativeRequest) -> tuple[NativeRequest, Route | None, TokenEstimate]:
    """The request as its route wants it (max_tokens default and ceiling), the route and
    what the limiter reserves for it."""
    table = service.model_table.table
    translated = request.translated
    if isinstance(translated, EmbedRequest):
        return request, table.route(request.public_model, "embeddings"), embed_estimate(translated)
    if isinstance(translated, ModelQuery):  # counted as a request, no tokens
        return request, table.route(request.public_model, None), TokenEstimate(prompt=0)
    generation, route = table.resolve(translated)
    return attrs.evolve(request, translated=generation), route, generation_estimate(generation)


def _usage_of(result: NativeAnswer | ChatResult | EmbedResult | ModelQuery) -> Usage | None:
    if isinstance(result, EmbedResult):
        return Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
    return None if isinstance(result, ModelQuery) else result.usage
