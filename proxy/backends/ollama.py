"""Ollama's native API: `/api/chat` (NDJSON stream or one object), `/api/embed`, `/api/version`.

Ollama reports a missing model as 404, a full queue as 503, a bad request as 400, and an
error during a stream as a line `{"error": "..."}` after a 200 status. It does not
know the gateway's parameter names: `max_tokens` is `options.num_predict`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
from attrs import define

from proxy.backends.base import Upstream
from proxy.backends.wire import ndjson_objects
from proxy.errors import (
    BadUpstreamResponse,
    ContextTooLarge,
    ModelNotFound,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from proxy.llm import ChatRequest, ChatResult, EmbedRequest, EmbedResult, Probe, StreamEnd, StreamItem, Usage

# gateway parameter -> Ollama option
_OPTION_NAMES = {
    "temperature": "temperature",
    "max_tokens": "num_predict",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop": "stop",
    "seed": "seed",
}


def classify_error(status: int, body: bytes, backend: str) -> UpstreamError:
    message = _error_message(body) or f"HTTP {status}"
    if status == 404:
        return ModelNotFound(message, backend=backend)
    if status == 400:
        if "context length" in message:
            return ContextTooLarge(message, backend=backend)
        return UpstreamRejected(message, backend=backend)
    if status in (401, 403):
        return UpstreamUnavailable(f"upstream refused the gateway: {message}", backend=backend)
    if status == 429 or status >= 500:
        return UpstreamUnavailable(message, backend=backend)
    return BadUpstreamResponse(f"unexpected HTTP {status}: {message}", backend=backend)


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return ""


def _usage(final: dict[str, Any]) -> Usage | None:
    if "prompt_eval_count" not in final and "eval_count" not in final:
        return None
    return Usage(
        prompt_tokens=int(final.get("prompt_eval_count", 0)),
        completion_tokens=int(final.get("eval_count", 0)),
    )


@define
class OllamaBackend:
    name: str
    _upstream: Upstream
    provider: str = "ollama"

    @property
    def display_url(self) -> str:
        return self._upstream.display_url

    def _chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": stream,
        }
        p = request.parameters
        options = {
            option: list(value) if isinstance(value, tuple) else value
            for param, option in _OPTION_NAMES.items()
            if (value := getattr(p, param)) is not None
        }
        if options:
            body["options"] = options
        return body

    def _checked(self, message: Any) -> dict[str, Any]:
        if not isinstance(message, dict):
            raise BadUpstreamResponse(f"expected a JSON object, got {message!r:.100}", backend=self.name)
        if "error" in message:
            raise UpstreamUnavailable(f"error from the model: {message['error']}", backend=self.name)
        return message

    async def chat(self, request: ChatRequest) -> ChatResult:
        async with self._upstream.request("POST", "/api/chat", json=self._chat_body(request, stream=False)) as response:
            answer = self._checked(orjson.loads(await response.read()))
        return ChatResult(
            output=str(answer.get("message", {}).get("content", "")),
            usage=_usage(answer),
            finish_reason=answer.get("done_reason"),
        )

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamItem, None]:
        body = self._chat_body(request, stream=True)
        async with self._upstream.request("POST", "/api/chat", json=body, streaming=True) as response:
            async for raw in ndjson_objects(response.content):
                message = self._checked(raw)
                token = message.get("message", {}).get("content")
                if token:
                    yield token
                if message.get("done"):
                    yield StreamEnd(usage=_usage(message), finish_reason=message.get("done_reason"))
                    return
        raise BadUpstreamResponse("the stream ended before Ollama's final message", backend=self.name)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        body = {"model": request.model, "input": request.wire_input}
        async with self._upstream.request("POST", "/api/embed", json=body) as response:
            answer = self._checked(orjson.loads(await response.read()))
        vectors = answer.get("embeddings")
        if not isinstance(vectors, list) or len(vectors) != len(request.inputs):
            raise BadUpstreamResponse("embeddings missing or not one per input", backend=self.name)
        return EmbedResult(vectors=tuple(vectors), prompt_tokens=int(answer.get("prompt_eval_count", 0)))

    async def ping(self) -> Probe:
        # /api/version is Ollama's cheapest endpoint: no model is touched.
        return await self._upstream.probe("/api/version")

    async def aclose(self) -> None:
        await self._upstream.aclose()
