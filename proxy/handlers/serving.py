"""One single-shot request through its key's limits to the first backend that serves it:
the steps the native and the OpenAI-compatible handlers share, whatever shape their
clients read. (Streams take the same steps in sse_relay.py.)"""

from __future__ import annotations

from aiohttp import web

from proxy.backends.base import Backend
from proxy.limits.estimate import chat_estimate, embed_estimate
from proxy.llm import ChatRequest, ChatResult, EmbedRequest, EmbedResult, Usage
from proxy.middlewares import OUTCOME, tenant_of
from proxy.routes import Route
from proxy.state import LIMITER, ROUTER, ROUTES


async def chat_once(request: web.Request, chat: ChatRequest, route: Route | None) -> tuple[Backend, ChatResult]:
    """`chat` as routed (`chat.model` is the public name the key's limits and usage use)."""
    async with request.app[LIMITER].reserve(tenant_of(request), chat.model, chat_estimate(chat)) as reservation:
        backend, result = await request.app[ROUTER].chat(chat, route)
        reservation.record(result.usage, output=result.generated_text)
    request[OUTCOME].served(backend.provider, result.usage)
    return backend, result


async def embed_once(request: web.Request, embed: EmbedRequest) -> tuple[Backend, EmbedResult]:
    request[OUTCOME].model = embed.model
    route = request.app[ROUTES].table.route(embed.model, "embeddings")
    async with request.app[LIMITER].reserve(tenant_of(request), embed.model, embed_estimate(embed)) as reservation:
        backend, result = await request.app[ROUTER].embed(embed, route)
        usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
        reservation.record(usage)
    request[OUTCOME].served(backend.provider, usage)
    return backend, result
