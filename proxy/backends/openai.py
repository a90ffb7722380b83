"""Any OpenAI-compatible endpoint: `{base}/chat/completions`, `{base}/completions`,
`{base}/embeddings`, `{base}/models`.

`base` is what the OpenAI SDK calls `base_url` (e.g. `http://host:8080/v1`). Streams are
SSE `data: {chunk}` events ending with `data: [DONE]`; usage is asked for with
`stream_options.include_usage` and arrives in a last chunk without choices. Errors are
`{"error": {"message", "type", "code"}}`, inside a stream too, where some servers also
mark them as `event: error`.

`top_k` is not in OpenAI's own API; it is passed on only when a client sets it, for the
many compatible servers (llama.cpp, vLLM) that accept it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, ClassVar

import orjson
from attrs import define

from proxy.backends import openai_chat
from proxy.backends.base import Fields, HttpBackend, classify_common, error_json, relayed_message
from proxy.backends.wire import sse_events
from proxy.errors import (
    BadUpstreamResponse,
    CapabilityMissing,
    ContextTooLarge,
    ModelNotFound,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from proxy.llm import (
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    StreamEnd,
    StreamItem,
    Usage,
)

_DONE = b"[DONE]"

# What one streamed choice carries, as items; the set holds the indexes of tool calls
# already started (a chat's calls come in pieces).
ChoiceItems = Callable[[dict[str, Any], Fields, set[int]], Iterable[StreamItem]]


def _error_fields(data: dict[str, Any]) -> tuple[str, str]:
    """(message, code-or-type) of an OpenAI error object; tolerant of other shapes."""
    error = data.get("error", data)
    if isinstance(error, dict):
        message, code = error.get("message"), error.get("code") or error.get("type")
        return (message if isinstance(message, str) else "", code if isinstance(code, str) else "")
    return (error, "") if isinstance(error, str) else ("", "")


def classify_error(status: int, body: bytes, backend: str) -> UpstreamError:
    data = error_json(body)
    # Only the error object's `message` is passed on; any other body stays in the server log.
    message, code = _error_fields(data) if data else ("", "")
    message = relayed_message(message, status)
    if status == 404:
        if code == "model_not_found" or "model" in message.lower():
            return ModelNotFound(message, backend=backend)
        return UpstreamUnavailable(f"endpoint not found (check OPENAI_API_ENDPOINT): {message}", backend=backend)
    if status in (400, 413, 422):
        if "context" in code or "context" in message.lower():
            return ContextTooLarge(message, backend=backend)
        return UpstreamRejected(message, backend=backend)
    return classify_common(status, message, backend)


def _usage(data: dict[str, Any], fields: Fields) -> Usage | None:
    usage = fields.object(data.get("usage"), "usage")
    if not usage:
        return None
    return Usage(
        prompt_tokens=fields.count(usage.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=fields.count(usage.get("completion_tokens"), "completion_tokens"),
    )


def _chat_choice_items(choice: dict[str, Any], fields: Fields, started_calls: set[int]) -> Iterable[StreamItem]:
    """A choice's items; its `logprobs`, which an upstream may send unasked, left out."""
    return openai_chat.delta_items(fields.object(choice.get("delta"), "delta"), fields, started_calls)


def _logged_choice_items(choice: dict[str, Any], fields: Fields, started_calls: set[int]) -> Iterable[StreamItem]:
    """A choice's items with its `logprobs`, for a request that asked for them."""
    return openai_chat.delta_items(fields.object(choice.get("delta"), "delta"), fields, started_calls,
                                   choice.get("logprobs"))


def _completion_choice_items(choice: dict[str, Any], fields: Fields, _: set[int]) -> Iterable[StreamItem]:
    token = fields.text(choice.get("text"), "text")
    return (token,) if token else ()


@define
class OpenAIBackend(HttpBackend):
    provider: ClassVar[str] = "openai"
    health_path: ClassVar[str] = "/models"  # also proves the key is accepted, which a TCP check would not

    async def refusal(self, request: ChatRequest) -> CapabilityMissing | None:
        return None  # takes OpenAI's whole request; the upstream's own 400 says what it lacks

    async def embed_refusal(self, request: EmbedRequest) -> CapabilityMissing | None:
        return None

    def _checked(self, raw: Any) -> dict[str, Any]:
        data = self.fields.object(raw, "the answer")
        if data.get("error") is not None:
            message, _ = _error_fields(data)
            raise UpstreamUnavailable(f"error from the model: {relayed_message(message, 200)}", backend=self.name)
        return data

    def stream(self, request: ChatRequest, *, cold: bool = False) -> AsyncGenerator[StreamItem, None]:
        body = openai_chat.chat_body(request, stream=True)
        items_of = _logged_choice_items if request.logprobs else _chat_choice_items
        return self._sse_stream("/chat/completions", body, items_of, cold=cold)

    def stream_completion(
        self, request: CompletionRequest, *, cold: bool = False,
    ) -> AsyncGenerator[StreamItem, None]:
        body = openai_chat.completion_body(request, stream=True)
        return self._sse_stream("/completions", body, _completion_choice_items, cold=cold)

    async def _sse_stream(
        self, path: str, body: dict[str, Any], items_of: ChoiceItems, *, cold: bool,
    ) -> AsyncGenerator[StreamItem, None]:
        """A chat's or a text completion's chunks, each choice read by `items_of`."""
        fields = self.fields
        finish_reason: str | None = None
        usage: Usage | None = None
        started_calls: set[int] = set()
        opened = self._upstream.request("POST", path, json=body, streaming=True, cold=cold)
        async with opened as response:
            async for event, data in sse_events(response.content, *self._upstream.read_budgets(cold=cold)):
                if data == _DONE:
                    yield StreamEnd(usage=usage, finish_reason=finish_reason)
                    return
                chunk = self._checked(orjson.loads(data))
                if event == b"error":
                    message, _ = _error_fields(chunk)
                    raise UpstreamUnavailable(f"error from the model: {relayed_message(message, 200)}",
                                              backend=self.name)
                usage = _usage(chunk, fields) or usage
                for item in fields.items(chunk.get("choices"), "choices"):
                    choice = fields.object(item, "a choice")
                    for piece in items_of(choice, fields, started_calls):
                        yield piece
                    finish = fields.optional_text(choice.get("finish_reason"), "finish_reason")
                    finish_reason = finish or finish_reason
        raise BadUpstreamResponse("the stream ended before [DONE]", backend=self.name)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        fields = self.fields
        answer = self._checked(await self.post_json("/embeddings", {"model": request.model,
                                                                    "input": request.wire_input}))
        items = [fields.object(item, "an embedding") for item in fields.items(answer.get("data"), "data")]
        ordered = sorted(items, key=lambda item: fields.count(item.get("index"), "index"))
        vectors = fields.vectors([item.get("embedding") for item in ordered], request.count)
        usage = fields.object(answer.get("usage"), "usage")
        return EmbedResult(vectors=vectors, prompt_tokens=fields.count(usage.get("prompt_tokens"), "prompt_tokens"))

    async def models(self) -> list[str]:
        fields = self.fields
        listed = fields.items(fields.object(await self.get_json("/models"), "models").get("data"), "data")
        return [fields.text(fields.object(m, "a model").get("id"), "id") for m in listed]
