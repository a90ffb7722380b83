"""Ollama's native API: `/api/chat` and `/api/generate` (NDJSON stream or one object),
`/api/embed`, `/api/version`.

Ollama reports a missing model as 404 `{"error": "model '...' not found"}`, a full queue as
503, a bad request as 400, and an error during a stream as a line `{"error": "..."}` after
a 200 status. It does not know the gateway's parameter names: `max_tokens` is
`options.num_predict`.

Text completions go to `/api/generate`, which applies the model's template, as Ollama's own
`/v1/completions` does: a code model's template turns `prompt` and `suffix` into its
fill-in-the-middle form.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from attrs import define

from proxy.backends.base import Fields, HttpBackend, classify_common, error_json, relayed_message
from proxy.backends.wire import ndjson_objects
from proxy.errors import (
    BadUpstreamResponse,
    ContextTooLarge,
    ModelNotFound,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from proxy.llm import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    Parameters,
    StreamEnd,
    StreamItem,
    Usage,
)

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
    error = error_json(body).get("error")
    # Only Ollama's `error` field is passed on; any other body stays in the server log.
    message = relayed_message(error if isinstance(error, str) else "", status)
    # Only Ollama's own JSON answer means a missing model; a bare "404 page not found"
    # means the URL is wrong (e.g. OLLAMA_BASE_URL ending in /api).
    if status == 404 and isinstance(error, str) and "model" in error:
        return ModelNotFound(message, backend=backend)
    if status == 404:
        return UpstreamUnavailable(f"no Ollama API at this URL (check OLLAMA_BASE_URL): {message}", backend=backend)
    if status == 400:
        if "context length" in message:
            return ContextTooLarge(message, backend=backend)
        return UpstreamRejected(message, backend=backend)
    return classify_common(status, message, backend)


def _usage(final: dict[str, Any], fields: Fields) -> Usage | None:
    if "prompt_eval_count" not in final and "eval_count" not in final:
        return None
    return Usage(
        prompt_tokens=fields.count(final.get("prompt_eval_count"), "prompt_eval_count"),
        completion_tokens=fields.count(final.get("eval_count"), "eval_count"),
    )


def _with_options(body: dict[str, Any], parameters: Parameters) -> dict[str, Any]:
    options = {
        option: list(value) if isinstance(value, tuple) else value
        for param, option in _OPTION_NAMES.items()
        if (value := getattr(parameters, param)) is not None
    }
    if options:
        body["options"] = options
    return body


# How long Ollama's list of loaded models (/api/ps) is trusted.
LOADED_TTL = 5.0


@define
class OllamaBackend(HttpBackend):
    provider: ClassVar[str] = "ollama"
    health_path: ClassVar[str] = "/api/version"  # cheapest endpoint: no model is touched
    _loaded: frozenset[str] | None = None
    _loaded_at: float = 0.0

    async def must_load(self, model: str) -> bool:
        """True when /api/ps does not list `model`: Ollama will load it before the first
        token, which takes seconds to minutes. Unknown (an error) counts as warm."""
        if self._loaded is None or time.monotonic() - self._loaded_at > LOADED_TTL:
            try:
                fields = self.fields
                answer = fields.object(await self.get_json("/api/ps"), "ps")
                listed = [fields.object(m, "a model") for m in fields.items(answer.get("models"), "models")]
                self._loaded = frozenset(
                    fields.text(m.get(key), key) for m in listed for key in ("name", "model") if m.get(key))
            except UpstreamError:
                return False
            self._loaded_at = time.monotonic()
        return model not in self._loaded and f"{model}:latest" not in self._loaded

    def _chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": self.wire_messages(request.messages),
                                "stream": stream}
        return _with_options(body, request.parameters)

    def _generate_body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "prompt": request.prompt, "stream": stream}
        if request.suffix is not None:
            body["suffix"] = request.suffix
        return _with_options(body, request.parameters)

    def _checked(self, raw: Any) -> dict[str, Any]:
        fields = self.fields
        message = fields.object(raw, "the message")
        error = message.get("error")
        if error is not None:
            raise UpstreamUnavailable(
                f"error from the model: {relayed_message(fields.text(error, 'error'), 200)}", backend=self.name)
        return message

    async def chat(self, request: ChatRequest) -> ChatResult:
        answer = self._checked(await self.post_json("/api/chat", self._chat_body(request, stream=False)))
        fields = self.fields
        return ChatResult(
            output=fields.text(fields.object(answer.get("message"), "message").get("content"), "content"),
            usage=_usage(answer, fields),
            finish_reason=fields.optional_text(answer.get("done_reason"), "done_reason"),
        )

    async def complete(self, request: CompletionRequest) -> ChatResult:
        answer = self._checked(await self.post_json("/api/generate", self._generate_body(request, stream=False)))
        fields = self.fields
        return ChatResult(
            output=fields.text(answer.get("response"), "response"),
            usage=_usage(answer, fields),
            finish_reason=fields.optional_text(answer.get("done_reason"), "done_reason"),
        )

    def stream(self, request: ChatRequest, *, cold: bool = False) -> AsyncGenerator[StreamItem, None]:
        return self._ndjson_stream("/api/chat", self._chat_body(request, stream=True), cold=cold)

    def stream_completion(
        self, request: CompletionRequest, *, cold: bool = False,
    ) -> AsyncGenerator[StreamItem, None]:
        return self._ndjson_stream("/api/generate", self._generate_body(request, stream=True), cold=cold)

    async def _ndjson_stream(
        self, path: str, body: dict[str, Any], *, cold: bool,
    ) -> AsyncGenerator[StreamItem, None]:
        """/api/chat's or /api/generate's lines: the text is in `message.content` or `response`."""
        fields = self.fields
        async with self._upstream.request("POST", path, json=body, streaming=True, cold=cold) as response:
            async for raw in ndjson_objects(response.content, self._upstream.read_budget(cold=cold)):
                message = self._checked(raw)
                if path == "/api/generate":
                    token = fields.text(message.get("response"), "response")
                else:
                    token = fields.text(fields.object(message.get("message"), "message").get("content"), "content")
                if token:
                    yield token
                if message.get("done") is True:
                    yield StreamEnd(usage=_usage(message, fields),
                                    finish_reason=fields.optional_text(message.get("done_reason"), "done_reason"))
                    return
        raise BadUpstreamResponse("the stream ended before Ollama's final message", backend=self.name)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        fields = self.fields
        answer = self._checked(await self.post_json("/api/embed", {"model": request.model,
                                                                   "input": request.wire_input}))
        vectors = fields.vectors(fields.items(answer.get("embeddings"), "embeddings"), len(request.inputs))
        return EmbedResult(vectors=vectors, prompt_tokens=fields.count(answer.get("prompt_eval_count"), "tokens"))

    async def models(self) -> list[str]:
        fields = self.fields
        listed = fields.items(fields.object(await self.get_json("/api/tags"), "tags").get("models"), "models")
        return [fields.text(fields.object(m, "a model").get("name"), "name") for m in listed]
