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

import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import orjson
from aiohttp import StreamReader
from attrs import define, field

from proxy.backends import ollama_chat
from proxy.backends.assemble import collect
from proxy.backends.base import HttpBackend, classify_common, error_json, relayed_message
from proxy.backends.ollama_capabilities import ModelCapabilities, unsupported_by_ollama
from proxy.backends.ollama_single import SingleAnswer
from proxy.backends.wire import chunks, ndjson_lines, ndjson_objects
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
    LoggedText,
    NativeAnswer,
    NativeLine,
    NativeRequest,
    Relayed,
    StreamEnd,
    StreamItem,
    ToolCallDelta,
)

# What Ollama's 400 "<model> does not support <what>" is about, as a request field.
_UNSUPPORTED_FIELDS = {"tools": "$.tools", "thinking": "$.reasoning_effort", "insert": "$.suffix", "embeddings": "$",
                       "vision": "$.messages", "images": "$.messages"}


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
        if "does not support" in message:
            # This model lacks what the request asks (tools, thinking...): another may not.
            what = message.rsplit("does not support", 1)[1].strip()
            return CapabilityMissing(message, backend=backend, field=_UNSUPPORTED_FIELDS.get(what, "$"))
        return UpstreamRejected(message, backend=backend)
    return classify_common(status, message, backend)


# Ollama's endpoints that generate, whose single answer is rebuilt from a stream.
_GENERATIONS = frozenset({"/api/chat", "/api/generate"})

# How long Ollama's list of loaded models (/api/ps) is trusted.
LOADED_TTL = 5.0


@define
class OllamaBackend(HttpBackend):
    provider: ClassVar[str] = "ollama"
    health_path: ClassVar[str] = "/api/version"  # cheapest endpoint: no model is touched
    # What /api/ps listed; None while unknown (not asked yet, or it failed).
    _loaded: frozenset[str] | None = None
    _loaded_at: float = -math.inf
    _refreshing: bool = False
    _capabilities: ModelCapabilities = field(factory=ModelCapabilities)

    async def refusal(self, request: ChatRequest) -> CapabilityMissing | None:
        """Why this backend cannot serve `request`, before it is sent; None when it may.

        What Ollama never does is known here; what depends on the model (tools, vision,
        thinking) is asked of /api/show, only when the request needs one of them."""
        problem = unsupported_by_ollama(request)
        if problem is None:
            needed = self._capabilities.needed(request)
            if needed:
                problem = await self._capabilities.missing(self, request.model, needed)
        if problem is None:
            return None
        reason, field_path = problem
        return CapabilityMissing(reason, backend=self.name, field=field_path)

    async def embed_refusal(self, request: EmbedRequest) -> CapabilityMissing | None:
        if request.token_arrays:
            return CapabilityMissing("Ollama embeds text, not token arrays", backend=self.name, field="$.input")
        return None

    async def must_load(self, model: str) -> bool:
        """True when /api/ps does not list `model`: Ollama will load it before the first
        token, which takes seconds to minutes. Unknown (an error) counts as warm.

        Asked at most once per LOADED_TTL, failures included (every chat asks, and an
        upstream without /api/ps must not cost a round trip per request); while one
        request asks, the others use the last answer."""
        if time.monotonic() - self._loaded_at > LOADED_TTL and not self._refreshing:
            self._refreshing = True
            try:
                self._loaded = await self._loaded_models()
            finally:
                self._refreshing = False
            self._loaded_at = time.monotonic()
        loaded = self._loaded
        return loaded is not None and model not in loaded and f"{model}:latest" not in loaded

    async def _loaded_models(self) -> frozenset[str] | None:
        fields = self.fields
        try:
            answer = fields.object(await self.get_json("/api/ps"), "ps")
            listed = [fields.object(m, "a model") for m in fields.items(answer.get("models"), "models")]
            return frozenset(fields.text(m.get(key), key) for m in listed for key in ("name", "model") if m.get(key))
        except UpstreamError:
            return None

    def _generate_body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "prompt": request.prompt, "stream": stream}
        if request.suffix is not None:
            body["suffix"] = request.suffix
        if options := ollama_chat.wire_options(request.parameters):
            body["options"] = options
        return body

    def _checked(self, raw: Any, *, verbatim: bool = False) -> dict[str, Any]:
        """The message; an `{"error": ...}` one raises, with Ollama's own words when `verbatim`
        (a pass-through relays them to an Ollama client as Ollama said them)."""
        if type(raw) is dict and raw.get("error") is None:
            return raw  # the usual case, without the checks below
        fields = self.fields
        message = fields.object(raw, "the message")
        error = message.get("error")
        if error is not None:
            text = relayed_message(fields.text(error, "error"), 200)
            raise UpstreamUnavailable(text if verbatim else f"error from the model: {text}", backend=self.name)
        return message

    # --- Ollama's own API, passed through -------------------------------------------------

    def speaks(self, api: str) -> bool:
        return api == "ollama"

    async def forward(self, request: NativeRequest) -> NativeAnswer:
        """Ollama's answer to a request in its own API. A chat's or a generation's single
        answer is read as a stream and rebuilt (ollama_single.py), so it is bounded by its
        silences and PROXY_MAX_REQUEST_SECONDS, not by the wait for a whole answer."""
        if request.path in _GENERATIONS:
            cold = await self.must_load(request.model)
            return await collect(self._single_lines(request, cold=cold), SingleAnswer(request, self.fields),
                                 self._upstream.timeouts, self.name, cold=cold)
        async with self._upstream.request("POST", request.path, json=_native_body(request)) as response:
            raw = await self._upstream.read_body(response)
            answer = self._checked(orjson.loads(raw), verbatim=True)
            return NativeAnswer(body=_public(raw, answer, request), usage=ollama_chat.usage(answer, self.fields))

    async def _single_lines(self, request: NativeRequest, *, cold: bool) -> AsyncGenerator[dict[str, Any], None]:
        """The lines of the stream asked for in place of a single answer; an error line
        raises, in Ollama's words, as Ollama's own single answer would have failed."""
        body = {**_native_body(request), "stream": True}
        async with self._upstream.request("POST", request.path, json=body, streaming=True, cold=cold) as response:
            async for raw in ndjson_objects(response.content, *self._upstream.read_budgets(cold=cold)):
                yield self._checked(raw, verbatim=True)

    async def open_forward(self, request: NativeRequest) -> tuple[NativeLine, AsyncGenerator[NativeLine, None]]:
        return await self.first_in_time(request.model, lambda cold: self.forward_lines(request, cold=cold))

    async def forward_lines(self, request: NativeRequest, *, cold: bool = False) -> AsyncGenerator[NativeLine, None]:
        """Ollama's lines as they arrive, each read only to see whether it ends the stream
        (its usage) or is an error (raised, with Ollama's words)."""
        fields = self.fields
        body = _native_body(request)
        async with self._upstream.request("POST", request.path, json=body, streaming=True, cold=cold) as response:
            async for line in ndjson_lines(response.content, *self._upstream.read_budgets(cold=cold)):
                message = self._checked(orjson.loads(line), verbatim=True)
                if message.get("done") is True:
                    end = StreamEnd(usage=ollama_chat.usage(message, fields),
                                    finish_reason=fields.optional_text(message.get("done_reason"), "done_reason"))
                    yield NativeLine(_public(line, message, request), end=end)
                    return
                yield NativeLine(_public(line, message, request))
        raise BadUpstreamResponse("the stream ended before Ollama's final message", backend=self.name)

    async def native_get(self, path: str) -> Any:
        """GET one of Ollama's read-only endpoints (/api/tags, /api/ps, /api/version) as JSON."""
        return self.fields.object(await self.get_json(path), path)

    @asynccontextmanager
    async def relay(
        self, method: str, path: str, data: bytes | AsyncIterator[bytes] | None, content_type: str | None,
    ) -> AsyncIterator[Relayed]:
        """Model management (pull, push, create, copy, delete, blobs): Ollama's answer with its
        status, its body in chunks as they arrive (a pull's progress lines one by one)."""
        async with self._upstream.exchange(method, path, data=data, content_type=content_type) as response:
            yield Relayed(status=response.status, content_type=response.headers.get("Content-Type", ""),
                          chunks=self._chunks(response.content))

    async def _chunks(self, content: StreamReader) -> AsyncIterator[bytes]:
        """Each chunk as it arrives (a silence longer than the idle budget ends the relay),
        its read errors named as this upstream's."""
        with self._upstream.translate_errors():
            async for chunk in chunks(content, *self._upstream.read_budgets()):
                yield chunk

    async def stream(self, request: ChatRequest, *, cold: bool = False) -> AsyncGenerator[StreamItem, None]:
        fields = self.fields
        body = ollama_chat.chat_body(request, stream=True)
        calls = 0
        logged = bool(request.logprobs)
        async with self._upstream.request("POST", "/api/chat", json=body, streaming=True, cold=cold) as response:
            async for raw in ndjson_objects(response.content, *self._upstream.read_budgets(cold=cold)):
                message = self._checked(raw)
                inner = message.get("message")
                text = ollama_chat.plain_text(inner)
                if logged and text:
                    yield self._logged(text, message)
                elif text is None:
                    for item in ollama_chat.stream_items(fields.object(inner, "message"), fields, calls):
                        calls += isinstance(item, ToolCallDelta)
                        yield item
                elif text:
                    yield text
                if message.get("done") is True:
                    reported = fields.optional_text(message.get("done_reason"), "done_reason")
                    yield StreamEnd(usage=ollama_chat.usage(message, fields),
                                    finish_reason="tool_calls" if calls else reported)
                    return
        raise BadUpstreamResponse("the stream ended before Ollama's final message", backend=self.name)

    def _logged(self, text: str, message: dict[str, Any]) -> LoggedText:
        """A token with its logprobs. An Ollama before 0.12.11 ignores `logprobs` and sends
        none: raised before anything of the answer is passed on, so the next backend can serve."""
        entries = ollama_chat.logprobs(message, self.fields)
        if entries is None:
            raise CapabilityMissing("this Ollama sent no logprobs (they came in Ollama 0.12.11)", backend=self.name,
                                    field="$.logprobs")
        return LoggedText(text, entries)

    async def stream_completion(
        self, request: CompletionRequest, *, cold: bool = False,
    ) -> AsyncGenerator[StreamItem, None]:
        """/api/generate's lines: the text is in `response`; the last line is `done`."""
        fields = self.fields
        body = self._generate_body(request, stream=True)
        async with self._upstream.request("POST", "/api/generate", json=body, streaming=True, cold=cold) as response:
            async for raw in ndjson_objects(response.content, *self._upstream.read_budgets(cold=cold)):
                message = self._checked(raw)
                if token := fields.text(message.get("response"), "response"):
                    yield token
                if message.get("done") is True:
                    yield StreamEnd(usage=ollama_chat.usage(message, fields),
                                    finish_reason=fields.optional_text(message.get("done_reason"), "done_reason"))
                    return
        raise BadUpstreamResponse("the stream ended before Ollama's final message", backend=self.name)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        fields = self.fields
        answer = self._checked(await self.post_json("/api/embed", {"model": request.model,
                                                                   "input": request.wire_input}))
        vectors = fields.vectors(fields.items(answer.get("embeddings"), "embeddings"), request.count)
        return EmbedResult(vectors=vectors, prompt_tokens=fields.count(answer.get("prompt_eval_count"), "tokens"))

    async def models(self) -> list[str]:
        fields = self.fields
        listed = fields.items(fields.object(await self.get_json("/api/tags"), "tags").get("models"), "models")
        return [fields.text(fields.object(m, "a model").get("name"), "name") for m in listed]


def _native_body(request: NativeRequest) -> dict[str, Any]:
    """The client's body under the upstream's model name, with the route's max_tokens (its
    default or ceiling) as `options.num_predict`."""
    body = dict(request.body)
    body["model"] = request.model
    if request.max_tokens is not None:
        body["options"] = {**(body.get("options") or {}), "num_predict": request.max_tokens}
    return body


def _public(raw: bytes, message: dict[str, Any], request: NativeRequest) -> bytes:
    """`raw` as sent, unless the routing table renamed the model: then under the public name
    (re-serialized, the one case where the bytes change)."""
    if request.model == request.public_model or "model" not in message:
        return raw
    message["model"] = request.public_model
    return orjson.dumps(message) + (b"\n" if raw.endswith(b"\n") else b"")
