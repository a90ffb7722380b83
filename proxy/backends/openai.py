"""Any OpenAI-compatible endpoint: `{base}/chat/completions`, `{base}/embeddings`, `{base}/models`.

`base` is what the OpenAI SDK calls `base_url` (e.g. `http://host:8080/v1`). Streams are
SSE `data: {chunk}` events ending with `data: [DONE]`; usage is asked for with
`stream_options.include_usage` and arrives in a last chunk without choices. Errors are
`{"error": {"message", "type", "code"}}`, inside a stream too.

`top_k` is not in OpenAI's own API; it is passed on only when a client sets it, for the
many compatible servers (llama.cpp, vLLM) that accept it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
from attrs import define

from proxy.backends.base import Upstream
from proxy.backends.wire import sse_data
from proxy.errors import (
    BadUpstreamResponse,
    ContextTooLarge,
    ModelNotFound,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from proxy.llm import ChatRequest, ChatResult, EmbedRequest, EmbedResult, Probe, StreamEnd, StreamItem, Usage

_DONE = b"[DONE]"


def _error_fields(body: bytes) -> tuple[str, str]:
    """(message, code-or-type) of an OpenAI error body; tolerant of other shapes."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:500], ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", "")), str(error.get("code") or error.get("type") or "")
    if isinstance(error, str):
        return error, ""
    return "", ""


def classify_error(status: int, body: bytes, backend: str) -> UpstreamError:
    message, code = _error_fields(body)
    message = message or f"HTTP {status}"
    if status == 404:
        if code == "model_not_found" or "model" in message.lower():
            return ModelNotFound(message, backend=backend)
        return UpstreamUnavailable(f"endpoint not found (check OPENAI_API_ENDPOINT): {message}", backend=backend)
    if status in (400, 413, 422):
        if "context" in code or "context" in message.lower():
            return ContextTooLarge(message, backend=backend)
        return UpstreamRejected(message, backend=backend)
    if status in (401, 403):
        return UpstreamUnavailable(f"upstream refused the gateway's key: {message}", backend=backend)
    if status in (408, 429) or status >= 500:
        return UpstreamUnavailable(message, backend=backend)
    return BadUpstreamResponse(f"unexpected HTTP {status}: {message}", backend=backend)


def _usage(data: dict[str, Any]) -> Usage | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


@define
class OpenAIBackend:
    name: str
    _upstream: Upstream
    provider: str = "openai"

    @property
    def display_url(self) -> str:
        return self._upstream.display_url

    def _chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        p = request.parameters
        for name in ("temperature", "max_tokens", "top_p", "top_k", "seed"):
            if (value := getattr(p, name)) is not None:
                body[name] = value
        if p.stop is not None:
            body["stop"] = list(p.stop)
        return body

    def _checked(self, message: Any) -> dict[str, Any]:
        if not isinstance(message, dict):
            raise BadUpstreamResponse(f"expected a JSON object, got {message!r:.100}", backend=self.name)
        if "error" in message:
            text, _ = _error_fields(orjson.dumps(message))
            raise UpstreamUnavailable(f"error from the model: {text}", backend=self.name)
        return message

    async def chat(self, request: ChatRequest) -> ChatResult:
        body = self._chat_body(request, stream=False)
        async with self._upstream.request("POST", "/chat/completions", json=body) as response:
            answer = self._checked(orjson.loads(await response.read()))
        choices = answer.get("choices")
        if not isinstance(choices, list) or not choices:
            raise BadUpstreamResponse("answer without choices", backend=self.name)
        choice = choices[0]
        return ChatResult(
            output=str((choice.get("message") or {}).get("content") or ""),
            usage=_usage(answer),
            finish_reason=choice.get("finish_reason"),
        )

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamItem, None]:
        body = self._chat_body(request, stream=True)
        finish_reason: str | None = None
        usage: Usage | None = None
        async with self._upstream.request("POST", "/chat/completions", json=body, streaming=True) as response:
            async for data in sse_data(response.content):
                if data == _DONE:
                    yield StreamEnd(usage=usage, finish_reason=finish_reason)
                    return
                chunk = self._checked(orjson.loads(data))
                usage = _usage(chunk) or usage
                for choice in chunk.get("choices") or ():
                    token = (choice.get("delta") or {}).get("content")
                    if token:
                        yield token
                    finish_reason = choice.get("finish_reason") or finish_reason
        raise BadUpstreamResponse("the stream ended before [DONE]", backend=self.name)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        body = {"model": request.model, "input": request.wire_input}
        async with self._upstream.request("POST", "/embeddings", json=body) as response:
            answer = self._checked(orjson.loads(await response.read()))
        data = answer.get("data")
        if not isinstance(data, list) or len(data) != len(request.inputs):
            raise BadUpstreamResponse("embeddings missing or not one per input", backend=self.name)
        ordered = sorted(data, key=lambda item: item.get("index", 0))
        usage = answer.get("usage") or {}
        return EmbedResult(
            vectors=tuple(item["embedding"] for item in ordered),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
        )

    async def ping(self) -> Probe:
        # /models also proves the key is accepted, which a TCP check would not.
        return await self._upstream.probe("/models")

    async def aclose(self) -> None:
        await self._upstream.aclose()
