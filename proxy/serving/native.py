"""How one backend serves a request in an upstream's own API (a NativeRequest, e.g. Ollama's):
as it is when the backend speaks that API, translated when it does not, and not at all
(CapabilityMissing, so the router moves on) when the translation cannot say it."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import attrs

from proxy.backends.base import Backend
from proxy.errors import CapabilityMissing, ModelNotFound
from proxy.llm import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    ModelQuery,
    NativeAnswer,
    NativeItem,
    NativeRequest,
)


async def serve(backend: Backend, request: NativeRequest) -> NativeAnswer | ChatResult | EmbedResult | ModelQuery:
    if backend.speaks(request.api):
        return await backend.forward(request)
    translated = _translated(request, backend)
    if isinstance(translated, EmbedRequest):
        return await backend.embed(translated)
    if isinstance(translated, ModelQuery):
        return await _listed(backend, translated)
    if isinstance(translated, CompletionRequest):
        return await backend.complete(translated)
    return await backend.chat(translated)


async def open_stream(
    backend: Backend, request: NativeRequest,
) -> tuple[NativeItem, AsyncGenerator[NativeItem, None]]:
    """The stream's first item within the backend's first-token timer, and the rest."""
    if backend.speaks(request.api):
        return await backend.open_forward(request)
    translated = _translated(request, backend)
    if not isinstance(translated, ChatRequest | CompletionRequest):
        raise CapabilityMissing("only a generation streams", backend=backend.name)
    return await backend.open_stream(translated)


async def _listed(backend: Backend, query: ModelQuery) -> ModelQuery:
    """The query, when `backend` lists its model; ModelNotFound when it does not."""
    if query.model not in await backend.models():
        raise ModelNotFound(f"model {query.model!r} is not listed", backend=backend.name)
    return query


def _translated(
    request: NativeRequest, backend: Backend,
) -> ChatRequest | CompletionRequest | EmbedRequest | ModelQuery:
    """The normalized request under the model name this backend knows; CapabilityMissing
    when it cannot be said in this backend's API."""
    if request.untranslatable:
        raise CapabilityMissing(request.untranslatable, backend=backend.name, field=request.untranslatable_at)
    return attrs.evolve(request.translated, model=request.model)
